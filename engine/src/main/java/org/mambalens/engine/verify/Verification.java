package org.mambalens.engine.verify;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.mambalens.engine.backend.Precision;
import org.mambalens.engine.io.ReferenceDump;
import org.mambalens.engine.model.Device;
import org.mambalens.engine.model.Families;
import org.mambalens.engine.model.ImageClassifier;
import org.mambalens.engine.model.LanguageModel;
import org.mambalens.engine.model.ModelFamily;
import org.mambalens.engine.model.Models;
import org.mambalens.engine.model.TextClassifier;
import org.mambalens.engine.trace.TraceRecorder;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.Set;

/**
 * A checkpoint run on a reference dump's input ({@link ReferenceDump}) and compared with it tensor by tensor, in
 * the order the model computes them: every hidden state (as transformers' {@code hidden_states} tuple has them for
 * the family), then the logits. Each gets the largest absolute difference and that difference relative to the
 * reference tensor's largest magnitude, which must not exceed the tolerance; the first tensor past it names the
 * layer where the model first went wrong.
 */
public final class Verification {
    /** The model's name for the last tensor: a causal LM's [L, V], a classifier's [labels]. */
    public static final String LOGITS = "logits";
    private static final String HIDDEN = "hidden_states.";

    private Verification() {
    }

    /** One tensor the model computed, named as the dump names it, with what produced it. */
    public record Computed(String name, String source, long[] shape, float[] values) {
    }

    /** One tensor compared: max |model − reference|, and max |reference|. */
    public record Row(String name, String source, long[] shape, double maxAbsError, double referenceMax, double tolerance) {
        /** The error relative to the reference tensor's largest magnitude (the absolute error where that is 0). */
        public double relativeError() {
            return referenceMax > 0 ? maxAbsError / referenceMax : maxAbsError;
        }

        /** Within the tolerance; never for NaN. */
        public boolean within() {
            return relativeError() <= tolerance;
        }
    }

    /** The comparison of one model with one dump. */
    public record Report(Path model, Path reference, String device, double tolerance, List<Row> rows, List<String> skipped) {
        public Optional<Row> firstFailure() {
            return rows.stream().filter(r -> !r.within()).findFirst();
        }

        /** Every tensor compared is within the tolerance. */
        public boolean ok() {
            return firstFailure().isEmpty();
        }

        /** A table, one row per tensor in order, the skipped ones, and a last line that says whether it passed and where it failed first. */
        public List<String> lines() {
            List<String> out = new ArrayList<>();
            out.add(String.format(Locale.ROOT, "%-18s %-12s %12s %12s  %-4s  %s", "tensor", "shape", "max |error|", "relative", "", "from"));
            for (Row r : rows) {
                out.add(String.format(Locale.ROOT, "%-18s %-12s %12.3e %12.3e  %-4s  %s", r.name(), shape(r.shape()), r.maxAbsError(),
                        r.relativeError(), r.within() ? "ok" : "FAIL", r.source()));
            }
            skipped.forEach(s -> out.add("skipped: " + s));
            out.add(firstFailure().map(r -> String.format(Locale.ROOT, "FAILED: %s (%s) first differs from the reference: relative error %.3e > tolerance %.1e",
                            r.name(), r.source(), r.relativeError(), tolerance))
                    .orElseGet(() -> String.format(Locale.ROOT, "OK: all %d tensors within %.1e of the reference (largest relative error %.3e)",
                            rows.size(), tolerance, rows.stream().mapToDouble(Row::relativeError).max().orElse(0))));
            return out;
        }

        /** The same as JSON: model, reference, device, tolerance, tensors [...], skipped, first_failure (or null), ok. */
        public String toJson() {
            ObjectMapper json = new ObjectMapper();
            ObjectNode root = json.createObjectNode();
            root.put("model", model.toString()).put("reference", reference.toString()).put("device", device).put("tolerance", tolerance);
            ArrayNode tensors = root.putArray("tensors");
            for (Row r : rows) {
                ObjectNode t = tensors.addObject().put("name", r.name()).put("source", r.source());
                ArrayNode dims = t.putArray("shape");
                for (long d : r.shape()) dims.add(d);
                t.put("max_abs_error", r.maxAbsError()).put("reference_max_abs", r.referenceMax()).put("relative_error", r.relativeError())
                        .put("within_tolerance", r.within());
            }
            ArrayNode skips = root.putArray("skipped");
            skipped.forEach(skips::add);
            Optional<Row> failed = firstFailure();
            if (failed.isPresent()) root.putObject("first_failure").put("name", failed.get().name()).put("source", failed.get().source());
            else root.putNull("first_failure");
            root.put("ok", ok());
            try {
                return json.writerWithDefaultPrettyPrinter().writeValueAsString(root) + "\n";
            } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
                throw new IllegalStateException(e);
            }
        }
    }

    /** Loads the checkpoint in {@code modelDir} on {@code device}, runs it on the dump's input and compares. */
    public static Report run(Path modelDir, ReferenceDump dump, Device device, Precision precision, double tolerance) {
        if (!(tolerance >= 0) || Double.isInfinite(tolerance)) throw new IllegalArgumentException("tolerance " + tolerance + " is not a finite number ≥ 0");
        List<Computed> computed = compute(modelDir, dump, device, precision);
        return compare(modelDir, dump, computed, device.name().toLowerCase(Locale.ROOT), tolerance);
    }

    /** What the model computes on the dump's input: its hidden states, then its logits. */
    static List<Computed> compute(Path dir, ReferenceDump dump, Device device, Precision precision) {
        boolean image = Families.forDirectory(dir).kind() == ModelFamily.Kind.IMAGE;
        if (image != (dump.pixels() != null)) {
            throw new IllegalArgumentException(dump.file() + " holds " + (image ? ReferenceDump.INPUT_IDS : ReferenceDump.PIXEL_VALUES)
                    + ", but " + dir + " is " + (image ? "an image classifier" : "a language model or text classifier"));
        }
        TraceRecorder trace = TraceRecorder.hiddenStatesOnly();
        Computed logits;
        if (image) {
            try (ImageClassifier m = Models.loadImageClassifier(dir, device, precision)) {
                long[] expected = {m.channels(), m.imageSize(), m.imageSize()};
                if (!Arrays.equals(dump.pixels().shape(), expected)) {
                    throw new IllegalArgumentException(dump.file() + ": " + ReferenceDump.PIXEL_VALUES + " is " + shape(dump.pixels().shape())
                            + ", the model takes " + shape(expected));
                }
                float[] out = m.classify(dump.pixels().values(), trace);
                logits = new Computed(LOGITS, "classifier", new long[]{out.length}, out);
            }
        } else if (Models.isTextClassifier(dir)) {
            try (TextClassifier c = Models.loadTextClassifier(dir, device, precision)) {
                int[] ids = dump.inputIds();
                int at = c.readPosition(ids), labels = c.labels().size();
                float[] all = c.model().forward(ids, trace);
                logits = new Computed(LOGITS, "score at position " + at, new long[]{labels}, Arrays.copyOfRange(all, at * labels, (at + 1) * labels));
            }
        } else {
            try (LanguageModel lm = Models.loadLanguageModel(dir, device, precision)) {
                int[] ids = dump.inputIds();
                float[] out = lm.forward(ids, trace);
                logits = new Computed(LOGITS, "head", new long[]{ids.length, lm.outputs()}, out);
            }
        }
        List<Computed> computed = new ArrayList<>();
        List<TraceRecorder.HiddenState> hidden = trace.hiddenStates();
        for (int k = 0; k < hidden.size(); k++) {
            TraceRecorder.HiddenState h = hidden.get(k);
            computed.add(new Computed(HIDDEN + k, h.source(), new long[]{h.tokens(), h.width()}, h.values()));
        }
        computed.add(logits);
        return computed;
    }

    /**
     * Compares {@code computed} with the dump, in order. A computed tensor the dump lacks is skipped with a note; a
     * dump tensor the model does not compute, or one of another shape, is refused in one line naming it.
     */
    static Report compare(Path model, ReferenceDump dump, List<Computed> computed, String device, double tolerance) {
        Set<String> names = new LinkedHashSet<>();
        computed.forEach(c -> names.add(c.name()));
        for (String name : dump.outputs().keySet()) {
            if (!names.contains(name)) {
                String hidden = names.size() > 1 ? HIDDEN + "0 … " + HIDDEN + (names.size() - 2) + " and " : "";
                throw new IllegalArgumentException(dump.file() + ": " + name + " is not an output of this model (it computes " + hidden + LOGITS + ")");
            }
        }
        List<Row> rows = new ArrayList<>();
        List<String> skipped = new ArrayList<>();
        for (Computed c : computed) {
            ReferenceDump.Output ref = dump.outputs().get(c.name());
            if (ref == null) {
                skipped.add(c.name() + " (" + c.source() + "): absent from the dump");
                continue;
            }
            if (!Arrays.equals(ref.shape(), c.shape())) {
                throw new IllegalArgumentException(dump.file() + ": " + c.name() + " is " + shape(ref.shape()) + " in the dump but "
                        + shape(c.shape()) + " from the model (" + c.source() + ")");
            }
            rows.add(new Row(c.name(), c.source(), c.shape(), maxAbsDifference(c.values(), ref.values()), maxAbs(ref.values()), tolerance));
        }
        if (rows.isEmpty()) throw new IllegalArgumentException(dump.file() + " holds none of the model's outputs (" + HIDDEN + "K, " + LOGITS + ")");
        return new Report(model, dump.file(), device, tolerance, rows, skipped);
    }

    /** max |a − b|, NaN when either holds a NaN. */
    static double maxAbsDifference(float[] a, float[] b) {
        double max = 0;
        for (int i = 0; i < a.length; i++) {
            double d = Math.abs((double) a[i] - b[i]);
            if (Double.isNaN(d)) return Double.NaN;
            max = Math.max(max, d);
        }
        return max;
    }

    private static double maxAbs(float[] a) {
        double max = 0;
        for (float v : a) max = Math.max(max, Math.abs(v));
        return max;
    }

    static String shape(long[] shape) {
        return Arrays.toString(shape);
    }
}
