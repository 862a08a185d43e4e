package org.mambalens.xai.eval;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.mambalens.engine.model.ImageClassifier;
import org.mambalens.xai.data.ImageDataset;
import org.mambalens.xai.data.ImagePreprocessor;
import org.mambalens.xai.methods.ImageExplainer;
import org.mambalens.xai.methods.ImageExplainer.Method;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.SortedMap;
import java.util.TreeMap;

/**
 * The seed paper's evaluation protocol (DESIGN §8) on a labelled image set (placed or plain Fashion-MNIST): for every image, model
 * and method (plus a random map as chance level), the perturbation curves (remove 0–90 % of the pixels,
 * most relevant first and least relevant first, by setting them to the dataset mean, which is 0 after
 * normalisation, or to black; top-1 agreement with the unperturbed prediction) and the segmentation of the
 * foreground (the data set's mask) by the map thresholded at its mean, and its average precision.
 *
 * <p>Each finished image is appended to {@code journal.jsonl} as one line, so a run that is interrupted
 * resumes where it stopped; the tables are then aggregated from the journal.
 */
public final class Evaluation implements DatasetJob {
    /** One model under test: a short name (the results' key), its directory and the loaded classifier. */
    public record Subject(String name, Path dir, ImageClassifier model) {
    }

    /** What a removed pixel becomes: the dataset mean (DESIGN §8; 0 after normalisation) or black (the images' background). */
    public enum Fill { mean, black }

    static final String RANDOM = "random";
    private static final ObjectMapper JSON = new ObjectMapper();

    private final List<Subject> subjects;
    private final List<Method> methods;
    private final Map<String, ImagePreprocessor> preprocessors = new LinkedHashMap<>();
    private final Map<String, Integer> startLayers = new LinkedHashMap<>();
    private final Map<String, Float> fillValues = new LinkedHashMap<>();
    private final ImageDataset data;
    private final Fill fill;
    private final long seed;

    public Evaluation(ImageDataset data, List<Subject> subjects, List<Method> methods, int startLayer, Fill fill, long seed) {
        this.data = data;
        this.subjects = subjects;
        this.methods = methods;
        this.fill = fill;
        this.seed = seed;
        for (Subject s : subjects) {
            ImageClassifier m = s.model();
            if (m.imageSize() != data.side() || m.channels() != 1) {
                throw new IllegalArgumentException(s.name() + " (" + s.dir() + ") takes " + m.channels() + "×" + m.imageSize() + "² images, not "
                        + data.title() + "'s 1×" + data.side() + "²");
            }
            ImagePreprocessor pre = ImagePreprocessor.of(s.dir(), m);
            preprocessors.put(s.name(), pre);
            fillValues.put(s.name(), fill == Fill.mean ? 0f : pre.fromGray(new int[]{0}, 1, 1)[0]);
            startLayers.put(s.name(), ImageExplainer.startLayer(startLayer, m.layers()));
        }
    }

    /** What identifies a run: resuming with other options would mix incomparable figures. */
    ObjectNode config() {
        ObjectNode c = JSON.createObjectNode();
        ArrayNode ms = c.putArray("models");
        for (Subject s : subjects) ms.addObject().put("name", s.name()).put("weights", Journal.fingerprint(s.dir()))
                .put("start_layer", startLayers.get(s.name()));
        ArrayNode me = c.putArray("methods");
        methods.forEach(m -> me.add(m.name()));
        c.put("data", data.name());
        c.put("fill", fill.name());
        c.put("seed", seed);
        c.put("steps", Metrics.STEPS.length);
        return c;
    }

    /**
     * Evaluates the first {@code limit} test images on {@code threads} threads (each image on one), skipping
     * those the journal in {@code out} already holds; then writes the results. Returns results.json.
     */
    public Path run(Path out, int limit, int threads, PrintStream progress) {
        return LocalRun.resume(this, config(), "image", out, limit, threads, progress);
    }

    @Override
    public int size() {
        return data.size();
    }

    @Override
    public String unit() {
        return "images";
    }

    /** results.json, results.md, per_image.csv, the curves and report.html from the images' journal lines. */
    @Override
    public Path write(Path out, SortedMap<Integer, JsonNode> results) {
        return Results.write(out, data, results, subjects, methods, startLayers, fill);
    }

    @Override
    public void close() {
        subjects.forEach(s -> s.model().close());
    }

    /** Every model and method on image i: one journal line. */
    @Override
    public ObjectNode item(int i) {
        int[] gray = data.pixels(i);
        boolean[] mask = data.mask(i);
        ObjectNode line = JSON.createObjectNode();
        line.put("image", i);
        line.put("label", data.label(i));
        ObjectNode models = line.putObject("models");
        for (int s = 0; s < subjects.size(); s++) {
            Subject subject = subjects.get(s);
            ImageClassifier model = subject.model();
            float[] pixels = preprocessors.get(subject.name()).fromGray(gray, data.side(), data.side());
            ObjectNode m = models.putObject(subject.name());
            Map<String, float[]> maps = new LinkedHashMap<>();
            Map<String, Double> millis = new TreeMap<>();
            int predicted = -1;
            for (Method method : methods) {
                long t0 = System.nanoTime();
                ImageExplainer.Result r = ImageExplainer.explain(model, pixels, EnumSet.of(method), startLayers.get(subject.name()), -1);
                maps.put(method.name(), ImageExplainer.pixelMap(r.patches().get(method), r.grid(), data.side()));
                millis.put(method.name(), (System.nanoTime() - t0) / 1e6);
                predicted = r.target();
            }
            if (predicted < 0) predicted = ImageClassifier.checkTarget(-1, model.classify(pixels, null));
            Random random = new Random(seed * 1_000_003L + i * 31L + s);
            float[] chance = new float[pixels.length];
            for (int p = 0; p < chance.length; p++) chance[p] = random.nextFloat();
            maps.put(RANDOM, chance);
            m.put("predicted", predicted);
            ObjectNode ms = m.putObject("methods");
            for (var e : maps.entrySet()) {
                ObjectNode r = ms.putObject(e.getKey());
                float removed = fillValues.get(subject.name());
                for (boolean positive : new boolean[]{true, false}) {
                    ArrayNode curve = r.putArray(positive ? "positive" : "negative");
                    for (int kept : Metrics.perturbation(x -> ImageClassifier.checkTarget(-1, model.classify(x, null)), pixels, e.getValue(),
                            positive, predicted, removed)) {
                        curve.add(kept);
                    }
                }
                Metrics.Confusion c = Metrics.confusion(e.getValue(), mask);
                r.put("tp", c.tp()).put("fp", c.fp()).put("fn", c.fn()).put("tn", c.tn());
                r.put("ap", Metrics.meanAveragePrecision(e.getValue(), mask));
                if (millis.containsKey(e.getKey())) r.put("ms", millis.get(e.getKey()));
            }
        }
        return line;
    }

    /** A one-line progress bar with rate and time left, redrawn at most twice a second. */
    static final class Progress {
        private final PrintStream out;
        private final int total;
        private final String unit;
        private final long start = System.nanoTime();
        private int done;
        private long drawn;

        Progress(PrintStream out, int total, String unit) {
            this.out = out;
            this.total = total;
            this.unit = unit;
        }

        synchronized void step() {
            done++;
            long now = System.nanoTime();
            if (now - drawn > 500_000_000L || done == total) {
                drawn = now;
                double seconds = (now - start) / 1e9, rate = done / Math.max(1e-9, seconds);
                long eta = Math.round((total - done) / Math.max(1e-9, rate));
                int width = 30, filled = (int) ((long) width * done / Math.max(1, total));
                out.printf("\r[%s%s] %d/%d %s, %.2f/s, ETA %d:%02d:%02d ", "#".repeat(filled), ".".repeat(width - filled),
                        done, total, unit, rate, eta / 3600, eta / 60 % 60, eta % 60);
                out.flush();
            }
        }

        void finish() {
            if (total > 0) out.println();
        }
    }
}
