package org.mambalens.engine.model.vit;

import org.mambalens.engine.cuda.CudaKernels;
import org.mambalens.engine.cuda.DeviceArena;
import org.mambalens.engine.cuda.DeviceBuffer;
import org.mambalens.engine.cuda.DeviceMatrix;
import org.mambalens.engine.cuda.Gpu;
import org.mambalens.engine.cuda.Precision;
import org.mambalens.engine.io.Checkpoint;
import org.mambalens.engine.io.ConfigFile;
import org.mambalens.engine.model.ImageClassifier;
import org.mambalens.engine.tensor.Matrices;
import org.mambalens.engine.trace.AttentionTrace;
import org.mambalens.engine.trace.TraceRecorder;

import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.TreeMap;

/**
 * The ViT / DeiT classifier of {@link ViTModel} on a CUDA GPU, a batch of images at a time: the same
 * checkpoint and equations (SPEC §6), query, key and value fused into one [3D, D] GEMM, attention as
 * batched GEMMs over every (image, head) with a row softmax between. The reverse pass (attribution)
 * runs on the CPU twin of the same checkpoint.
 *
 * <p>Shapes: B images, T = tokens (cls + M patches), D = hidden, H = heads, dh = D / H,
 * F = intermediate, C·Q·Q = one flattened patch, K = classes.
 */
public final class ViTCudaModel implements ImageClassifier {

    private record Layer(DeviceBuffer ln1W, DeviceBuffer ln1B,   // [D]
                         DeviceMatrix qkv, DeviceBuffer qkvB,     // [3D, D], [3D] or null
                         DeviceMatrix attnOut, DeviceBuffer attnOutB, // [D, D], [D]
                         DeviceBuffer ln2W, DeviceBuffer ln2B,    // [D]
                         DeviceMatrix fc1, DeviceBuffer fc1B,     // [F, D], [F]
                         DeviceMatrix fc2, DeviceBuffer fc2B) {   // [D, F], [D]
    }

    /** Activations for up to {@code capacity} images. */
    private static final class Scratch {
        final MemorySegment pixelsStaging;   // page-locked [B, C, S, S]
        final DeviceBuffer pixels, columns, patches, x, normed, qkv, q, k, v, scores, context, attended, hidden, mlp, clsNormed, logits;

        Scratch(DeviceArena arena, ViTConfig c, int capacity, int patchLength, int classes) {
            int T = c.tokens(), M = T - 1, D = c.hiddenSize(), H = c.heads();
            long rows = (long) capacity * T;
            pixelsStaging = arena.pinnedFloats((long) capacity * c.channels() * c.imageSize() * c.imageSize());
            pixels = arena.floats((long) capacity * c.channels() * c.imageSize() * c.imageSize());  // [B, C, S, S]
            columns = arena.floats((long) capacity * M * patchLength);   // [B·M, C·Q·Q]
            patches = arena.floats((long) capacity * M * D);             // [B·M, D]
            x = arena.floats(rows * D);                                  // residual stream [B·T, D]
            normed = arena.floats(rows * D);
            qkv = arena.floats(rows * 3 * D);                            // [B·T, 3D]
            q = arena.floats(rows * D);                                  // [B, H, T, dh], scaled by 1/√dh
            k = arena.floats(rows * D);
            v = arena.floats(rows * D);
            scores = arena.floats(rows * H * T);                         // softmax probabilities [B, H, T, T]
            context = arena.floats(rows * D);                            // [B, H, T, dh]
            attended = arena.floats(rows * D);                           // heads side by side [B·T, D]
            hidden = arena.floats(rows * D);
            mlp = arena.floats(rows * c.intermediateSize());             // [B·T, F]
            clsNormed = arena.floats((long) capacity * D);               // [B, D]
            logits = arena.floats((long) capacity * classes);            // [B, K]
        }
    }

    private final Path dir;
    private final ViTConfig config;
    private final Gpu gpu;
    private final CudaKernels kernels;
    private final DeviceArena weights, work;
    private final DeviceMatrix patchProj;     // [D, C·Q·Q]
    private final DeviceBuffer patchBias, cls, position, lnW, lnB, classifierB;   // [D], [D], [T, D], [D], [D], [K]
    private final DeviceMatrix classifier;    // [K, D]
    private final Layer[] layers;
    private final int patchLength, classes;
    private final TreeMap<Integer, Scratch> scratch = new TreeMap<>();
    private ViTModel cpuTwin;

    private ViTCudaModel(Path dir, ViTConfig c, Checkpoint ck, Gpu gpu, Precision precision) {
        this.dir = dir;
        this.config = c;
        this.gpu = gpu;
        this.weights = gpu.newArena();
        this.work = gpu.newArena();
        this.kernels = new CudaKernels(gpu, work);
        int D = c.hiddenSize(), Q = c.patchSize(), C = c.channels(), F = c.intermediateSize();
        patchLength = C * Q * Q;
        patchProj = DeviceMatrix.upload(weights, ck.tensor("vit.embeddings.patch_embeddings.projection.weight", D, C, Q, Q), D, patchLength, precision);
        patchBias = weights.upload(ck.tensor("vit.embeddings.patch_embeddings.projection.bias", D).toFloatArray());
        cls = weights.upload(ck.tensor("vit.embeddings.cls_token", 1, 1, D).toFloatArray());
        position = weights.upload(ck.tensor("vit.embeddings.position_embeddings", 1, c.tokens(), D).toFloatArray());
        layers = new Layer[c.layers()];
        for (int i = 0; i < layers.length; i++) {
            String p = "vit.encoder.layer." + i + ".", a = p + "attention.attention.";
            DeviceBuffer qkvB = null;
            if (c.qkvBias()) {
                float[] bias = new float[3 * D];
                System.arraycopy(ck.tensor(a + "query.bias", D).toFloatArray(), 0, bias, 0, D);
                System.arraycopy(ck.tensor(a + "key.bias", D).toFloatArray(), 0, bias, D, D);
                System.arraycopy(ck.tensor(a + "value.bias", D).toFloatArray(), 0, bias, 2 * D, D);
                qkvB = weights.upload(bias);
            }
            layers[i] = new Layer(
                    vector(ck, p + "layernorm_before.weight", D), vector(ck, p + "layernorm_before.bias", D),
                    DeviceMatrix.stack(weights, precision, D, ck.tensor(a + "query.weight", D, D), ck.tensor(a + "key.weight", D, D), ck.tensor(a + "value.weight", D, D)),
                    qkvB,
                    DeviceMatrix.upload(weights, ck.tensor(p + "attention.output.dense.weight", D, D), D, D, precision), vector(ck, p + "attention.output.dense.bias", D),
                    vector(ck, p + "layernorm_after.weight", D), vector(ck, p + "layernorm_after.bias", D),
                    DeviceMatrix.upload(weights, ck.tensor(p + "intermediate.dense.weight", F, D), F, D, precision), vector(ck, p + "intermediate.dense.bias", F),
                    DeviceMatrix.upload(weights, ck.tensor(p + "output.dense.weight", D, F), D, F, precision), vector(ck, p + "output.dense.bias", D));
        }
        lnW = vector(ck, "vit.layernorm.weight", D);
        lnB = vector(ck, "vit.layernorm.bias", D);
        classes = ck.tensor("classifier.weight").dim(0);
        classifier = DeviceMatrix.upload(weights, ck.tensor("classifier.weight", classes, D), classes, D, precision);
        classifierB = vector(ck, "classifier.bias", classes);
        gpu.synchronize();
    }

    private DeviceBuffer vector(Checkpoint ck, String name, int length) {
        return weights.upload(ck.tensor(name, length).toFloatArray());
    }

    /** Loads the checkpoint onto {@code gpu}, which the model then owns (and closes). */
    public static ViTCudaModel load(Path dir, Gpu gpu, Precision precision) {
        ViTConfig config = ViTConfig.from(ConfigFile.in(dir));
        return gpu.load(dir, ck -> new ViTCudaModel(dir, config, ck, gpu, precision));
    }

    @Override
    public int numClasses() {
        return classes;
    }

    @Override
    public int channels() {
        return config.channels();
    }

    @Override
    public int imageSize() {
        return config.imageSize();
    }

    @Override
    public int clsPosition() {
        return 0;
    }

    @Override
    public boolean onGpu() {
        return true;
    }

    @Override
    public int layers() {
        return config.layers();
    }

    @Override
    public synchronized float[] classify(float[] pixels, TraceRecorder trace) {
        return forward(new float[][]{pixels}, trace)[0];
    }

    @Override
    public synchronized float[][] classifyBatch(float[][] images) {
        return forward(images, null);
    }

    private float[][] forward(float[][] images, TraceRecorder trace) {
        int C = config.channels(), S = config.imageSize(), B = images.length;
        for (float[] image : images) ImageClassifier.checkPixels(image, C, S);
        gpu.bind();
        Scratch s = scratch(B);
        if (DeviceArena.POISON) work.poison();
        s.pixels.uploadAll(images, s.pixelsStaging);
        launches(s, B, trace);
        return Matrices.rows(s.logits.download(0, B * classes), B, classes);
    }

    private Scratch scratch(int images) {
        var fit = scratch.ceilingEntry(images);
        if (fit != null) return fit.getValue();
        Scratch s = new Scratch(work, config, images, patchLength, classes);
        scratch.put(images, s);
        return s;
    }

    private void launches(Scratch s, int B, TraceRecorder trace) {
        int T = config.tokens(), M = T - 1, D = config.hiddenSize(), H = config.heads(), dh = D / H, F = config.intermediateSize();
        int grid = config.imageSize() / config.patchSize();
        float eps = config.eps();
        long rows = (long) B * T;
        int n = Math.toIntExact(rows);
        kernels.im2col(s.columns.address(), s.pixels.address(), B, config.channels(), config.imageSize(), config.patchSize(), config.patchSize(), grid);
        kernels.linear(s.patches.address(), D, s.columns.address(), patchLength, B * M, patchProj);
        kernels.assembleTokens(s.x.address(), s.patches.address(), patchBias.address(), cls.address(), position.address(), B, M, D, 0);
        for (int i = 0; i < layers.length; i++) {
            Layer w = layers[i];
            kernels.layernorm(s.normed.address(), D, s.x.address(), D, w.ln1W().address(), w.ln1B().address(), n, D, eps);
            kernels.linear(s.qkv.address(), 3 * D, s.normed.address(), D, n, w.qkv());          // x = x + Attn(LN(x))
            kernels.qkvToHeads(s.q.address(), s.k.address(), s.v.address(), s.qkv.address(), w.qkvB() == null ? 0 : w.qkvB().address(),
                    B, T, H, dh, (float) (1 / Math.sqrt(dh)));
            kernels.attentionScores(s.scores.address(), s.q.address(), s.k.address(), B * H, T, dh);
            kernels.softmaxRows(s.scores.address(), rows * H, T);
            if (trace != null && trace.wants(i)) {
                float[] probs = s.scores.download(0, H * T * T);              // image 0's [H, T, T]
                trace.record(i, () -> new AttentionTrace(H, T, probs));
            }
            kernels.attentionContext(s.context.address(), s.scores.address(), s.v.address(), B * H, T, dh);
            kernels.headsToRows(s.attended.address(), s.context.address(), B, T, H, dh);
            kernels.linear(s.hidden.address(), D, s.attended.address(), D, n, w.attnOut());
            kernels.addBiasResidual(s.x.address(), s.hidden.address(), w.attnOutB().address(), rows, D);
            kernels.layernorm(s.normed.address(), D, s.x.address(), D, w.ln2W().address(), w.ln2B().address(), n, D, eps);
            kernels.linear(s.mlp.address(), F, s.normed.address(), D, n, w.fc1());                // x = x + MLP(LN(x))
            kernels.biasActivation(s.mlp.address(), w.fc1B().address(), rows, F, true);
            kernels.linear(s.hidden.address(), D, s.mlp.address(), F, n, w.fc2());
            kernels.addBiasResidual(s.x.address(), s.hidden.address(), w.fc2B().address(), rows, D);
        }
        kernels.layernorm(s.clsNormed.address(), D, s.x.address(), (long) T * D, lnW.address(), lnB.address(), B, D, eps);   // cls rows only
        kernels.linear(s.logits.address(), classes, s.clsNormed.address(), D, B, classifier);
        kernels.biasActivation(s.logits.address(), classifierB.address(), B, classes, false);
    }

    /** Attribution's reverse pass runs on the CPU twin of this checkpoint, loaded on first use. */
    @Override
    public synchronized float[] classifyWithGradients(float[] pixels, int target, TraceRecorder trace) {
        if (cpuTwin == null) cpuTwin = ViTModel.load(dir);
        return cpuTwin.classifyWithGradients(pixels, target, trace);
    }

    @Override
    public synchronized void close() {
        if (cpuTwin != null) cpuTwin.close();
        work.close();
        weights.close();
        gpu.close();
    }
}
