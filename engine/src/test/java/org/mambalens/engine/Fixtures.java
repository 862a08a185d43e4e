package org.mambalens.engine;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.mambalens.engine.io.Npy;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Where the golden fixtures made by weights-tools/reference/*.py live, from any module's tests. */
public final class Fixtures {
    private Fixtures() {
    }

    /** engine/src/test/resources/golden, found from the current directory or a parent. */
    public static Path golden() {
        for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
            Path g = p.resolve("engine/src/test/resources/golden");
            if (Files.isDirectory(g)) return g;
            g = p.resolve("src/test/resources/golden");
            if (Files.isDirectory(g) && p.getFileName().toString().equals("engine")) return g;
        }
        throw new IllegalStateException("golden fixtures not found from " + Path.of("").toAbsolutePath());
    }

    /** The repository root (holds models/). */
    public static Path repository() {
        return golden().getParent().getParent().getParent().getParent().getParent();
    }

    /** A fixture under golden/: the golden directory, or for "trained/NAME" the bundled models/NAME; "demo" is models/mamba-fortunes. */
    public static Path modelDir(String name) {
        if (name.equals("demo")) return repository().resolve("models/mamba-fortunes");
        return name.startsWith("trained/") ? repository().resolve("models/" + name.substring(8)) : golden().resolve(name);
    }

    /** The devices every golden test runs on: the CPU, and CUDA where a GPU opens (skipped with the reason otherwise). */
    public static java.util.stream.Stream<org.mambalens.engine.model.Device> devices() {
        return java.util.stream.Stream.of(org.mambalens.engine.model.Device.CPU, org.mambalens.engine.model.Device.CUDA);
    }

    /** Every device with every fixture name. */
    public static java.util.stream.Stream<org.junit.jupiter.params.provider.Arguments> onEveryDevice(String... names) {
        return devices().flatMap(d -> java.util.Arrays.stream(names).map(n -> org.junit.jupiter.params.provider.Arguments.of(d, n)));
    }

    /** A golden fixture's pixels.npy, one array per image. */
    public static float[][] images(String name) {
        Npy.Array pixels = Npy.readFloat32(golden().resolve(name).resolve("pixels.npy"));
        int n = pixels.dim(0), size = pixels.data().length / n;
        float[][] images = new float[n][];
        for (int i = 0; i < n; i++) images[i] = java.util.Arrays.copyOfRange(pixels.data(), i * size, (i + 1) * size);
        return images;
    }

    public static float[] flatten(float[][] rows) {
        int k = rows[0].length;
        float[] out = new float[rows.length * k];
        for (int i = 0; i < rows.length; i++) System.arraycopy(rows[i], 0, out, i * k, k);
        return out;
    }

    /** Two scans' traced tensors (e.g. a GPU's and the CPU's) equal within 1e-5 relative. */
    public static void assertSameScan(org.mambalens.engine.trace.MixerTrace g, org.mambalens.engine.trace.MixerTrace c) {
        java.util.Map<String, java.util.function.Function<org.mambalens.engine.trace.MixerTrace, float[]>> fields = new java.util.LinkedHashMap<>();
        fields.put("delta", org.mambalens.engine.trace.MixerTrace::delta);
        fields.put("B", org.mambalens.engine.trace.MixerTrace::b);
        fields.put("C", org.mambalens.engine.trace.MixerTrace::c);
        fields.put("s", org.mambalens.engine.trace.MixerTrace::s);
        fields.put("u", org.mambalens.engine.trace.MixerTrace::u);
        fields.put("x", org.mambalens.engine.trace.MixerTrace::x);
        fields.put("z", org.mambalens.engine.trace.MixerTrace::z);
        fields.put("y", org.mambalens.engine.trace.MixerTrace::y);
        fields.forEach((name, get) -> org.assertj.core.api.Assertions.assertThat(relativeError(get.apply(g), get.apply(c))).as(name).isLessThan(1e-5));
    }

    /** Greedy decoding of a fixture's prompt (greedy_prompt, else token_ids, in its reference.json) gives its greedy_ids. */
    public static void assertGreedyIdsMatch(org.mambalens.engine.model.LanguageModel model, Path fixture) {
        JsonNode ref = json(fixture.resolve("reference.json"));
        int[] expected = ints(ref.get("greedy_ids"));
        int[] prompt = ints(ref.has("greedy_prompt") ? ref.get("greedy_prompt") : ref.get("token_ids"));
        org.assertj.core.api.Assertions.assertThat(greedy(model, prompt, expected.length)).containsExactly(expected);
    }

    public static JsonNode json(Path file) {
        try {
            return new ObjectMapper().readTree(file.toFile());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public static int[] ints(JsonNode array) {
        int[] out = new int[array.size()];
        for (int i = 0; i < out.length; i++) out[i] = array.get(i).asInt();
        return out;
    }

    /** Logits [N, classes] of every image of a float32 [N, C, H, W] array; the first image is traced. */
    public static float[] classifyAll(org.mambalens.engine.model.ImageClassifier model, Npy.Array pixels,
                                      org.mambalens.engine.trace.TraceRecorder firstImageTrace) {
        int n = pixels.dim(0), size = pixels.data().length / n, k = model.numClasses();
        float[] logits = new float[n * k];
        for (int i = 0; i < n; i++) {
            float[] out = model.classify(java.util.Arrays.copyOfRange(pixels.data(), i * size, (i + 1) * size), i == 0 ? firstImageTrace : null);
            System.arraycopy(out, 0, logits, i * k, k);
        }
        return logits;
    }

    /**
     * Greedy decoding through prefill and step, as the reference's generate(min_new_tokens = all of them)
     * ran it (which masks end-of-sequence): the prompt followed by the new ids, {@code total} ids in all.
     */
    public static int[] greedy(org.mambalens.engine.model.LanguageModel model, int[] prompt, int total) {
        int[] ids = java.util.Arrays.copyOf(prompt, total);
        var state = model.newState();
        float[] logits = model.prefill(prompt, state);
        for (int n = prompt.length; n < total; n++) {
            logits[model.eosTokenId()] = Float.NEGATIVE_INFINITY;
            ids[n] = org.mambalens.engine.text.Sampler.argmax(logits);
            logits = model.step(ids[n], state);
        }
        return ids;
    }

    /**
     * Asserts that the recurrent path gives the whole-sequence logits: ids [0, a) and [a, b) prefilled, then
     * one token at a time, every row within 1e-5 of forward(ids).
     */
    public static void assertDecodeEqualsForward(org.mambalens.engine.model.LanguageModel model, int[] ids, int a, int b) {
        assertDecodeEqualsForward(model, ids, a, b, 1e-5);
    }

    /** As above within {@code tolerance} (BF16 GEMMs: one token and a whole prompt may round their operands differently). */
    public static void assertDecodeEqualsForward(org.mambalens.engine.model.LanguageModel model, int[] ids, int a, int b, double tolerance) {
        int v = model.vocabSize();
        float[] all = model.forward(ids, null);
        var state = model.newState();
        model.prefill(java.util.Arrays.copyOf(ids, a), state);
        float[] part = model.prefill(java.util.Arrays.copyOfRange(ids, a, b), state);
        org.assertj.core.api.Assertions.assertThat(relativeError(part, java.util.Arrays.copyOfRange(all, (b - 1) * v, b * v))).isLessThan(tolerance);
        for (int t = b; t < ids.length; t++) {
            float[] row = model.step(ids[t], state);
            org.assertj.core.api.Assertions.assertThat(relativeError(row, java.util.Arrays.copyOfRange(all, t * v, (t + 1) * v)))
                    .as("position %d", t).isLessThan(tolerance);
        }
        org.assertj.core.api.Assertions.assertThat(state.position()).isEqualTo(ids.length);
    }

    /**
     * Sequences of different prompt lengths decoded together in one batch, each finishing at its own step (id −1
     * afterwards): at every step each running sequence's logits are bit for bit those it gets decoded alone, and a
     * finished one's are zeros.
     */
    public static void assertBatchDecodesEachAsAlone(org.mambalens.engine.model.LanguageModel model, int sequences, int steps, long seed) {
        java.util.Random random = new java.util.Random(seed);
        int v = model.outputs();
        var batch = model.newBatch(sequences);
        var alone = new org.mambalens.engine.model.LanguageModel.State[sequences];
        int[] next = new int[sequences], lasts = new int[sequences];
        for (int i = 0; i < sequences; i++) {
            int[] prompt = random.ints(1 + 3 * i, 0, model.vocabSize()).toArray();
            alone[i] = model.newState();
            float[] logits = model.prefill(prompt, batch.sequence(i));
            org.assertj.core.api.Assertions.assertThat(logits).as("prompt %d", i).isEqualTo(model.prefill(prompt, alone[i]));
            next[i] = org.mambalens.engine.text.Sampler.argmax(logits);
            lasts[i] = steps - i;                                  // sequence i runs steps − i steps
        }
        for (int t = 0; t < steps; t++) {
            int[] ids = new int[sequences];
            for (int i = 0; i < sequences; i++) ids[i] = t < lasts[i] ? next[i] : -1;
            float[] all = model.step(ids, batch);
            for (int i = 0; i < sequences; i++) {
                float[] row = java.util.Arrays.copyOfRange(all, i * v, (i + 1) * v);
                if (ids[i] < 0) {
                    org.assertj.core.api.Assertions.assertThat(row).as("finished sequence %d", i).containsOnly(0f);
                    continue;
                }
                float[] single = model.step(ids[i], alone[i]);
                org.assertj.core.api.Assertions.assertThat(relativeError(row, single)).as("sequence %d, step %d", i, t).isZero();
                org.assertj.core.api.Assertions.assertThat(row).as("sequence %d, step %d", i, t).isEqualTo(single);
                next[i] = org.mambalens.engine.text.Sampler.argmax(row);
                org.assertj.core.api.Assertions.assertThat(batch.sequence(i).position()).isEqualTo(alone[i].position());
            }
        }
    }

    /** n values of a normal distribution times {@code scale} (multiplied in double, then rounded to float). */
    public static float[] gaussian(java.util.Random random, int n, double scale) {
        float[] values = new float[n];
        for (int i = 0; i < n; i++) values[i] = (float) (random.nextGaussian() * scale);
        return values;
    }

    /** max |a − b| / max |b|: the tolerance measure of the golden tests. */
    public static double relativeError(float[] a, float[] b) {
        if (a.length != b.length) throw new IllegalArgumentException("lengths " + a.length + " and " + b.length);
        double maxDiff = 0, maxRef = 0;
        for (int i = 0; i < a.length; i++) {
            maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]));
            maxRef = Math.max(maxRef, Math.abs(b[i]));
        }
        return maxDiff / Math.max(maxRef, 1e-30);
    }
}
