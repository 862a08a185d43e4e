package org.mambalens.benchmarks;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.mambalens.engine.cuda.CudaKernels;
import org.mambalens.engine.cuda.CudaKernels.ScanArgs;
import org.mambalens.engine.cuda.DeviceArena;
import org.mambalens.engine.cuda.DeviceBuffer;
import org.mambalens.engine.cuda.DeviceMatrix;
import org.mambalens.engine.cuda.Gpu;
import org.mambalens.engine.cuda.Graph;
import org.mambalens.engine.backend.CpuBackend;
import org.mambalens.engine.backend.Precision;
import org.mambalens.engine.model.Device;
import org.mambalens.engine.model.Families;
import org.mambalens.engine.model.ImageClassifier;
import org.mambalens.engine.model.LanguageModel;
import org.mambalens.engine.model.ModelFamily;
import org.mambalens.engine.model.Models;
import org.mambalens.engine.kernels.Parallel;
import org.mambalens.engine.trace.TraceRecorder;
import org.mambalens.xai.attention.AttentionMaps;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;
import java.util.function.DoubleSupplier;

/**
 * The CUDA backend's benchmark command (a GPU run is timed with device events or a synchronising
 * wall clock, not JMH): device-to-device copy bandwidth, the selective-scan kernel's achieved bandwidth,
 * Mamba LM prefill and decode tokens/s (decode with and without CUDA graphs), and ViM / ViT images/s at
 * batch 1 and 64, with F32 GEMMs and again with BF16 GEMMs (keys ending in {@code _bf16}), plus one GEMM
 * of each kind; and for each {@code --family NAME=DIR} (any language model), prefill and decode on the GPU and
 * on the CPU of the same machine, and on the CPU the reverse pass of attribution ({@code family_NAME_...} keys). Every figure is the median of several runs after a warm-up.
 * <pre>java -cp benchmarks.jar org.mambalens.benchmarks.CudaBenchmark --lm DIR --vim DIR --vit DIR [--family NAME=DIR ...] [--decode-only|--prefill-only] --out FILE.json</pre>
 * {@code --decode-only} keeps the decode kernels' rows and the Mamba LM's decode rows (a short run);
 * {@code --prefill-only} the copy bandwidth, the scan rows and the Mamba LM's prefill rows.
 * (scripts/device-cuda.sh runs it beside benchmarks/cuda_torch_bench.py on the same GPU).
 */
public final class CudaBenchmark {
    private final ObjectNode results = new ObjectMapper().createObjectNode();
    private final boolean decodeOnly;          // --decode-only: the decode kernels and the LM's decode rows
    private final boolean prefillOnly;         // --prefill-only: bandwidth, scans and the LM's prefill rows

    private CudaBenchmark(boolean decodeOnly, boolean prefillOnly) {
        this.decodeOnly = decodeOnly;
        this.prefillOnly = prefillOnly;
    }

    public static void main(String[] args) throws IOException {
        String lm = null, vim = null, vit = null, out = null;
        boolean decodeOnly = false, prefillOnly = false;
        Map<String, Path> families = new LinkedHashMap<>();
        for (int i = 0; i < args.length; i++) {
            String option = args[i];
            if (option.equals("--decode-only") || option.equals("--prefill-only")) {
                decodeOnly |= option.equals("--decode-only");
                prefillOnly |= option.equals("--prefill-only");
                continue;
            }
            if (i + 1 == args.length) throw new IllegalArgumentException(option + " takes a value");
            String value = args[++i];
            switch (option) {
                case "--lm" -> lm = value;
                case "--vim" -> vim = value;
                case "--vit" -> vit = value;
                case "--out" -> out = value;
                case "--family" -> {
                    String[] nameDir = value.split("=", 2);
                    if (nameDir.length != 2) throw new IllegalArgumentException("--family takes NAME=DIR, not " + value);
                    families.put(nameDir[0], Path.of(nameDir[1]));
                }
                default -> throw new IllegalArgumentException("unknown option " + option);
            }
        }
        if (decodeOnly && prefillOnly) throw new IllegalArgumentException("--decode-only and --prefill-only exclude each other");
        CudaBenchmark b = new CudaBenchmark(decodeOnly, prefillOnly);
        try (Gpu gpu = Gpu.open()) {
            b.results.put("device", gpu.name());
            if (!decodeOnly) b.bandwidth(gpu);
            if (!decodeOnly && !prefillOnly) b.gemms(gpu);
            if (!prefillOnly) for (Precision precision : Precision.values()) b.decodeKernels(gpu, precision);
        }
        for (Precision precision : Precision.values()) {
            if (lm != null) b.languageModel(Path.of(lm), precision);
            if (vim != null) b.images("vim", Path.of(vim), precision);
            if (vit != null) b.images("vit", Path.of(vit), precision);
        }
        families.forEach(b::family);
        String json = new ObjectMapper().writerWithDefaultPrettyPrinter().writeValueAsString(b.results);
        System.out.println(json);
        if (out != null) java.nio.file.Files.writeString(Path.of(out), json);
    }

    private static double median(int runs, DoubleSupplier measure) {
        measure.getAsDouble();                                              // warm-up
        double[] t = new double[runs];
        for (int i = 0; i < runs; i++) t[i] = measure.getAsDouble();
        Arrays.sort(t);
        return t[runs / 2];
    }

    private void put(String key, double value, String unit) {
        results.put(key, value);
        System.err.printf("%-44s %12.1f %s%n", key, value, unit);
    }

    /** Copy bandwidth (bytes read + written) and the scan kernel at the mamba-130m and ViM-tiny batch-64 shapes. */
    private void bandwidth(Gpu gpu) {
        try (DeviceArena arena = gpu.newArena()) {
            long n = 1L << 28;                                              // 1 GiB each way
            DeviceBuffer a = arena.floats(n), b = arena.floats(n);
            a.fill(1f);
            double ms = median(10, () -> gpu.time(() -> b.copyFrom(a, 0, 0, n)));
            put("copy_GBps", 2.0 * 4 * n / (ms * 1e6), "GB/s (device-to-device, read + write)");
        }
        try (DeviceArena arena = gpu.newArena()) {                          // a batch of images' upload alone, as classifyBatch does it
            int batch = 64, size = 3 * 224 * 224;
            float[][] images = new float[batch][size];
            DeviceBuffer pixels = arena.floats((long) batch * size);
            var staging = arena.pinnedFloats((long) batch * size);
            put("upload_batch64_224_ms", 1e3 * median(10, () -> seconds(() -> pixels.uploadAll(images, staging))),
                    "ms (64 images of 3x224x224 F32 from the Java heap: gathered into pinned memory, one copy)");
        }
        scan(gpu, "scan_mamba130m_L4096", 1, 4096, 1536, 16);              // one long sequence
        scan(gpu, "scan_mamba130m_L2048", 1, 2048, 1536, 16);
        scan(gpu, "scan_mamba130m_L512", 1, 512, 1536, 16);                // a prefill's chunk
        scan(gpu, "scan_vim_tiny_B64", 64, 197, 384, 16);
    }

    private void scan(Gpu gpu, String name, int batch, int tokens, int channels, int states) {
        try (DeviceArena arena = gpu.newArena()) {
            CudaKernels k = new CudaKernels(gpu, arena);
            long rows = (long) batch * tokens;
            Random r = new Random(1);
            DeviceBuffer u = random(arena, rows * channels, r, 1f), dt = random(arena, rows * channels, r, 1f),
                    bc = random(arena, rows * 2 * states, r, 1f), z = random(arena, rows * channels, r, 1f),
                    a = random(arena, (long) channels * states, r, -1f), d = random(arena, channels, r, 1f),
                    bias = random(arena, channels, r, 1f), y = arena.floats(rows * channels);
            ScanArgs args = new ScanArgs(y.address(), channels, u.address(), channels, dt.address(), channels, bias.address(), bc.address(),
                    2 * states, z.address(), channels, a.address(), d.address(), 0, 0, 0, 0, 0, 4);
            k.selectiveScan(args, batch, tokens, channels, states, false, false);          // scratch allocated outside the capture
            double ms;
            try (Graph graph = gpu.capture(() -> {                          // 10 scans replayed: the GPU's time, not the launches'
                for (int i = 0; i < 10; i++) k.selectiveScan(args, batch, tokens, channels, states, false, false);
            })) {
                ms = median(10, () -> gpu.time(graph::launch)) / 10;
            }
            double bytes = 4.0 * rows * (4L * channels + 2L * states);      // u, dt, z read, y written; B, C read once
            put(name + "_us", ms * 1e3, "µs");
            put(name + "_GBps", bytes / (ms * 1e6), "GB/s");
        }
    }

    /** Mamba-130m's in_proj over a 2,048-token chunk ([2048, 768] · [768, 3072]) with each weight precision. */
    private void gemms(Gpu gpu) {
        int rows = 2048, in = 768, out = 3072;
        Random r = new Random(2);
        float[] w = new float[out * in];
        for (int i = 0; i < w.length; i++) w[i] = (float) r.nextGaussian();
        for (Precision precision : Precision.values()) {
            try (DeviceArena arena = gpu.newArena()) {
                CudaKernels k = new CudaKernels(gpu, arena);
                DeviceMatrix weight = DeviceMatrix.upload(arena, org.mambalens.engine.tensor.Tensor.of("w", w, out, in), out, in, precision);
                DeviceBuffer x = random(arena, (long) rows * in, r, 1f), y = arena.floats((long) rows * out);
                double ms = median(20, () -> gpu.time(() -> k.linear(y.address(), out, x.address(), in, rows, weight)));
                put("gemm_in_proj_2048" + suffix(precision) + "_TFLOPs", 2.0 * rows * in * out / (ms * 1e9), "TFLOP/s (operand rounding included)");
            }
        }
    }

    /**
     * The decode step's kernels one at a time at mamba-130m's shapes (one token): each launched 100 times in a captured
     * graph, so the figure is the kernel's own time in a replayed step (µs), beside cuBLAS's SGEMV/GemmEx for the same
     * products (reached with alpha ≠ 1, which the gemv kernels do not take).
     */
    private void decodeKernels(Gpu gpu, Precision precision) {
        for (int rows : new int[]{1, 64}) decodeKernels(gpu, precision, rows);
    }

    /** The kernels for `rows` sequences stepped together (keys with _batchB for B > 1). */
    private void decodeKernels(Gpu gpu, Precision precision, int rows) {
        int D = 768, E = 1536, N = 16, R = 48, K = 4, V = 50280, P = R + 2 * N;
        Random r = new Random(6);
        String suffix = (rows > 1 ? "_batch" + rows : "") + suffix(precision);
        try (DeviceArena arena = gpu.newArena()) {
            CudaKernels k = new CudaKernels(gpu, arena);
            DeviceMatrix inProj = matrix(arena, r, 2 * E, D, precision), outProj = matrix(arena, r, D, E, precision),
                    xProj = matrix(arena, r, P, E, precision), dtProj = matrix(arena, r, E, R, precision), head = matrix(arena, r, V, D, precision);
            DeviceBuffer x = random(arena, (long) rows * D, r, 1f), norm = random(arena, D, r, 1f), normed = arena.floats((long) rows * D),
                    xz = random(arena, (long) rows * 2 * E, r, 1f), y = arena.floats((long) rows * E),
                    window = random(arena, (long) rows * (K - 1) * E, r, 1f), state = random(arena, (long) rows * E * N, r, 1f),
                    partial = arena.floats(CudaKernels.ssmStepScratch(rows, E, N, R)), taps = random(arena, (long) K * E, r, 1f),
                    dtBias = random(arena, E, r, 1f), a = k.ssmStepWeights(arena, random(E * N, r, -1f), dtProj, E, N, R), d = random(arena, E, r, 1f),
                    logits = arena.floats((long) rows * V);
            Map<String, Runnable> kernels = new LinkedHashMap<>();
            kernels.put("norm_in_proj", () -> k.rmsnormLinear(xz.address(), 2 * E, x.address(), norm.address(), 1e-5f, normed.address(), rows, inProj, 0));
            kernels.put("ssm_step", () -> k.ssmStep(y.address(), E, xz.address(), 2 * E, window.address(), state.address(), partial.address(),
                    taps.address(), 0, xProj, dtProj, dtBias.address(), a.address(), d.address(), rows, E, N, R, K));
            for (int channelsPerWarp : new int[]{0, 1, 4}) {                // every layout of the SSM step's second half
                kernels.put("ssm_step_c" + channelsPerWarp, () -> k.ssmStep(y.address(), E, xz.address(), 2 * E, window.address(),
                        state.address(), partial.address(), taps.address(), 0, xProj, dtProj, dtBias.address(), a.address(), d.address(),
                        rows, E, N, R, K, channelsPerWarp));
            }
            kernels.put("out_proj_add", () -> k.linear(x.address(), D, y.address(), E, rows, outProj, 0, 1f, true));
            kernels.put("head", () -> k.linear(logits.address(), V, x.address(), D, rows, head, 0, 1f, false));
            if (rows == 1) {
                kernels.put("in_proj_cublas", () -> k.linear(xz.address(), 2 * E, normed.address(), D, 1, inProj, 0, 0.999f, false));
                kernels.put("out_proj_cublas", () -> k.linear(x.address(), D, y.address(), E, 1, outProj, 0, 0.999f, false));
                kernels.put("head_cublas", () -> k.linear(logits.address(), V, x.address(), D, 1, head, 0, 0.999f, false));
            }
            kernels.forEach((name, launch) -> timeInGraph(gpu, name + suffix, launch));
        }
    }

    /** A kernel launched 100 times in a captured graph: decode_kernel_NAME_us, its time a launch in a replayed step. */
    private void timeInGraph(Gpu gpu, String name, Runnable launch) {
        launch.run();                                                       // cuBLAS sets itself up outside the capture
        try (Graph graph = gpu.capture(() -> {
            for (int i = 0; i < 100; i++) launch.run();
        })) {
            put("decode_kernel_" + name + "_us", 10 * median(10, () -> gpu.time(graph::launch)), "µs per launch (in a graph)");
        }
    }

    private static DeviceMatrix matrix(DeviceArena arena, Random r, int rows, int cols, Precision precision) {
        float[] w = new float[rows * cols];
        for (int i = 0; i < w.length; i++) w[i] = (float) r.nextGaussian() * 0.05f;
        return DeviceMatrix.upload(arena, org.mambalens.engine.tensor.Tensor.of("w", w, rows, cols), rows, cols, precision);
    }

    private static String suffix(Precision precision) {
        return precision == Precision.F32 ? "" : "_" + precision.name().toLowerCase(java.util.Locale.ROOT);
    }

    private static DeviceBuffer random(DeviceArena arena, long count, Random r, float sign) {
        return arena.upload(random(Math.toIntExact(count), r, sign));
    }

    /** Gaussian values of scale 0.5, or for sign < 0 values in (−1.5, −0.5] (A's decays). */
    private static float[] random(int count, Random r, float sign) {
        float[] v = new float[count];
        for (int i = 0; i < v.length; i++) v[i] = sign < 0 ? -(0.5f + r.nextFloat()) : (float) r.nextGaussian() * 0.5f;
        return v;
    }

    private void languageModel(Path dir, Precision precision) {
        Random r = new Random(3);
        String suffix = suffix(precision);
        try (LanguageModel lm = Models.loadLanguageModel(dir, Device.CUDA, precision)) {
            for (int tokens : decodeOnly ? new int[0] : new int[]{512, 2048}) {
                int[] prompt = r.ints(tokens, 0, lm.vocabSize()).toArray();
                for (int i = 0; i < 3; i++) lm.prefill(prompt, lm.newState());   // the launch path compiled before timing
                double s = median(9, () -> {
                    LanguageModel.State state = lm.newState();     // made outside the timed prefill
                    long t0 = System.nanoTime();
                    lm.prefill(prompt, state);
                    return (System.nanoTime() - t0) / 1e9;
                });
                put("lm_prefill_" + tokens + "_tokens_per_s" + suffix, tokens / s, "tokens/s");
            }
            if (prefillOnly) return;
            put("lm_decode_graphs_tokens_per_s" + suffix, decode(lm, r), "tokens/s (batch 1, CUDA graphs)");
            put("lm_decode_greedy_on_gpu_tokens_per_s" + suffix, decodeBatch(lm, r, 1, 256, true),
                    "tokens/s (batch 1, CUDA graphs, each step's two likeliest tokens found on the GPU: no logits read back)");
            for (int sequences : new int[]{8, 64, 256}) {
                put("lm_decode_batch" + sequences + "_tokens_per_s" + suffix, decodeBatch(lm, r, sequences, 64, true),
                        "tokens/s (" + sequences + " sequences stepped together, greedy: each step's two likeliest tokens found on the GPU)");
            }
            put("lm_decode_batch64_logits_tokens_per_s" + suffix, decodeBatch(lm, r, 64, 64, false),
                    "tokens/s (64 sequences stepped together, every step's logits read back, argmax on the host)");
            if (precision == Precision.F32 && !decodeOnly) {                  // one layer's hidden-attention summary, GPU and CPU
                for (int tokens : new int[]{1024, 4096}) {
                    TraceRecorder trace = TraceRecorder.layers(java.util.Set.of(0));
                    lm.forward(r.ints(tokens, 0, lm.vocabSize()).toArray(), trace);
                    put("summary_layer_" + tokens + "_gpu_ms", 1e3 * median(3, () -> seconds(() -> AttentionMaps.summary(trace.layer(0), lm.backend()))), "ms");
                    if (tokens <= 1024) {
                        put("summary_layer_" + tokens + "_cpu_ms", 1e3 * median(3, () -> seconds(() -> AttentionMaps.summary(trace.layer(0), CpuBackend.INSTANCE))),
                                "ms (CPU, " + Parallel.THREADS + " threads)");
                    }
                }
            }
        }
        System.setProperty("mambalens.cuda.ssmStep", "warps");             // a batch's SSM step in the other layout, same run
        try (LanguageModel lm = Models.loadLanguageModel(dir, Device.CUDA, precision)) {
            put("lm_decode_batch8_ssm_warps_tokens_per_s" + suffix, decodeBatch(lm, r, 8, 64, true),
                    "tokens/s (8 sequences, as lm_decode_batch8, the SSM step's second half a warp per channel)");
            put("lm_decode_batch64_ssm_warps_tokens_per_s" + suffix, decodeBatch(lm, r, 64, 64, true),
                    "tokens/s (64 sequences, as lm_decode_batch64, the SSM step's second half a warp per channel)");
        } finally {
            System.clearProperty("mambalens.cuda.ssmStep");
        }
        if (decodeOnly) return;
        System.setProperty("mambalens.cuda.overlap", "false");
        try (LanguageModel lm = Models.loadLanguageModel(dir, Device.CUDA, precision)) {
            put("lm_decode_graphs_no_overlap_tokens_per_s" + suffix, decode(lm, r), "tokens/s (batch 1, CUDA graphs, no programmatic dependent launches)");
        } finally {
            System.clearProperty("mambalens.cuda.overlap");
        }
        if (precision != Precision.F32) return;
        System.setProperty("mambalens.cuda.noGraphs", "true");
        try (LanguageModel lm = Models.loadLanguageModel(dir, Device.CUDA, Precision.F32)) {
            put("lm_decode_launches_tokens_per_s", decode(lm, r), "tokens/s (batch 1, one launch at a time)");
        } finally {
            System.clearProperty("mambalens.cuda.noGraphs");
        }
    }

    /** A language model's prefill of 512 tokens and its decode, on the GPU (F32) and on this machine's CPU. */
    private void family(String name, Path dir) {
        for (Device device : new Device[]{Device.CUDA, Device.CPU}) {
            Random r = new Random(5);
            String key = "family_" + name + "_" + device.name().toLowerCase(java.util.Locale.ROOT);
            try (LanguageModel lm = Models.loadLanguageModel(dir, device, Precision.F32)) {
                int[] prompt = r.ints(512, 0, lm.vocabSize()).toArray();
                double s = median(device == Device.CUDA ? 5 : 1, () -> seconds(() -> lm.prefill(prompt, lm.newState())));
                put(key + "_prefill_512_tokens_per_s", 512 / s, "tokens/s (" + lm + ")");
                put(key + "_decode_tokens_per_s", device == Device.CUDA ? decode(lm, r, 256) : decode(lm, r, 32),
                        device == Device.CUDA ? "tokens/s (batch 1)" : "tokens/s (batch 1, " + Parallel.THREADS + " threads)");
                if (device == Device.CPU && Families.forDirectory(dir).has(ModelFamily.Capability.REVERSE_PASS)) {
                    lm.forwardWithGradients(java.util.Arrays.copyOf(prompt, 64), 63, 0, TraceRecorder.allLayers());   // warm-up
                    put(key + "_attribution_512_s", seconds(() -> lm.forwardWithGradients(prompt, 511, 0, TraceRecorder.allLayers())),
                            "s (one reverse pass: every layer's residual gradient of a 512-token prompt, " + Parallel.THREADS + " threads)");
                }
            }
        }
    }

    private static double seconds(Runnable work) {
        long t0 = System.nanoTime();
        work.run();
        return (System.nanoTime() - t0) / 1e9;
    }

    /** Tokens/s of 256 greedy steps after a 16-token prompt. */
    private static double decode(LanguageModel lm, Random r) {
        return decode(lm, r, 256);
    }

    /** Tokens/s of {@code steps} greedy steps after a 16-token prompt. */
    private static double decode(LanguageModel lm, Random r, int steps) {
        double s = median(3, () -> {
            var state = lm.newState();
            float[] logits = lm.prefill(r.ints(16, 0, lm.vocabSize()).toArray(), state);
            long t0 = System.nanoTime();
            for (int i = 0; i < steps; i++) logits = lm.step(argmax(logits), state);
            return (System.nanoTime() - t0) / 1e9;
        });
        return steps / s;
    }

    /**
     * Tokens/s of {@code steps} greedy steps of {@code sequences} sequences decoded together, after 16-token prompts: each step
     * asks the model for the two likeliest tokens ({@code onDevice}), or reads the logits back and takes the argmax here.
     */
    private static double decodeBatch(LanguageModel lm, Random r, int sequences, int steps, boolean onDevice) {
        int v = lm.outputs();
        double s = median(3, () -> {
            var batch = lm.newBatch(sequences);
            int[] next = new int[sequences];
            for (int i = 0; i < sequences; i++) next[i] = argmax(lm.prefill(r.ints(16, 0, lm.vocabSize()).toArray(), batch.sequence(i)));
            long t0 = System.nanoTime();
            for (int t = 0; t < steps; t++) {
                if (onDevice) {
                    int[] two = lm.stepTopTwo(next, batch);
                    for (int i = 0; i < sequences; i++) next[i] = two[2 * i];
                } else {
                    float[] logits = lm.step(next, batch);
                    Parallel.forRange(sequences, 1, (i0, i1) -> {
                        for (int i = i0; i < i1; i++) next[i] = argmax(Arrays.copyOfRange(logits, i * v, (i + 1) * v));
                    });
                }
            }
            return (System.nanoTime() - t0) / 1e9;
        });
        return (double) sequences * steps / s;
    }

    private static int argmax(float[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
        return best;
    }

    private void images(String name, Path dir, Precision precision) {
        try (ImageClassifier model = Models.loadImageClassifier(dir, Device.CUDA, precision)) {
            Random r = new Random(4);
            int size = model.channels() * model.imageSize() * model.imageSize();
            for (int batch : new int[]{1, 64}) {
                float[][] images = new float[batch][size];
                for (float[] image : images) for (int i = 0; i < size; i++) image[i] = (float) r.nextGaussian();
                double s = median(10, () -> {
                    long t0 = System.nanoTime();
                    model.classifyBatch(images);
                    return (System.nanoTime() - t0) / 1e9;
                });
                put(name + "_batch" + batch + "_images_per_s" + suffix(precision), batch / s, "images/s (pixels from the Java heap, logits back)");
            }
        }
    }
}
