package org.mambalens.engine.model.vit;

import org.mambalens.engine.backend.Backend;
import org.mambalens.engine.backend.Buffer;
import org.mambalens.engine.backend.CpuBackend;
import org.mambalens.engine.backend.Matrix;
import org.mambalens.engine.io.Checkpoint;
import org.mambalens.engine.io.ConfigFile;
import org.mambalens.engine.kernels.Backward;
import org.mambalens.engine.kernels.Elementwise;
import org.mambalens.engine.model.ImageBatch;
import org.mambalens.engine.model.ImageClassifier;
import org.mambalens.engine.model.PatchEmbedding;
import org.mambalens.engine.tensor.Tensor;
import org.mambalens.engine.trace.AttentionTrace;
import org.mambalens.engine.trace.TraceRecorder;

import java.nio.file.Path;
import java.util.Arrays;

import static org.mambalens.engine.backend.CpuBackend.array;
import static org.mambalens.engine.backend.CpuBackend.wrap;

/**
 * ViT / DeiT image classifier (transformers' {@code ViTForImageClassification}, DESIGN §6), read top to
 * bottom: weights, then the forward pass. Pre-norm blocks, multi-head softmax attention, exact GELU,
 * the classifier on the cls token. Written once over a {@link Backend}: the CPU, or a batch of
 * images at a time on a GPU.
 *
 * <p>Shapes: T = tokens (cls + patches), D = hidden, H = heads, dh = D / H, F = intermediate,
 * C·P·P = one flattened patch, K = classes.
 */
public final class ViTModel implements ImageClassifier {

    /** One encoder block; optional ones are null. */
    record Layer(Buffer ln1W, Buffer ln1B,            // [D] layernorm_before
                 Matrix qkv, Buffer qkvB,             // [3D, D] query, key, value stacked; [3D]
                 Matrix attnOut, Buffer attnOutB,     // [D, D], [D]
                 Buffer ln2W, Buffer ln2B,            // [D] layernorm_after
                 Matrix fc1, Buffer fc1B,             // [F, D], [F] intermediate.dense
                 Matrix fc2, Buffer fc2B,             // [D, F], [D] output.dense
                 Tensor query, Tensor key, Tensor value) {   // [D, D] each, for the reverse pass
    }

    private final Path dir;
    private final ViTConfig config;
    private final Checkpoint checkpoint;
    private final Backend backend;
    private final PatchEmbedding patches; // Conv2d(C → D, kernel = stride = Q), for the reverse pass
    private final Matrix patchProj;       // [D, C·Q·Q]
    private final Buffer patchBias, cls, position;   // [D], [D], [T, D]
    private final Layer[] layers;
    private final Buffer lnW, lnB;        // [D] final layernorm
    private final Matrix classifier;      // [K, D]
    private final Buffer classifierB;     // [K]
    private final int classes;
    private ViTModel reverse;             // on a GPU: this checkpoint on the CPU backend, for the reverse pass

    private ViTModel(Path dir, ViTConfig c, Checkpoint ck, Backend backend) {
        this.dir = dir;
        this.config = c;
        this.checkpoint = ck;
        this.backend = backend;
        int D = c.hiddenSize(), Q = c.patchSize(), C = c.channels(), F = c.intermediateSize();
        patches = PatchEmbedding.load(ck, "vit.embeddings.patch_embeddings.projection.weight",
                "vit.embeddings.patch_embeddings.projection.bias", D, C, Q, Q, c.imageSize());
        patchProj = backend.matrix(patches.proj(), D, C * Q * Q);
        patchBias = backend.constant(patches.bias());
        cls = backend.constant(ck.tensor("vit.embeddings.cls_token", 1, 1, D).toFloatArray());
        position = backend.constant(ck.tensor("vit.embeddings.position_embeddings", 1, c.tokens(), D).toFloatArray());
        layers = new Layer[c.layers()];
        for (int i = 0; i < layers.length; i++) {
            String p = "vit.encoder.layer." + i + ".";
            String a = p + "attention.attention.";
            Tensor query = ck.tensor(a + "query.weight", D, D), key = ck.tensor(a + "key.weight", D, D), value = ck.tensor(a + "value.weight", D, D);
            Buffer qkvB = null;
            if (c.qkvBias()) {
                float[] bias = new float[3 * D];
                System.arraycopy(ck.tensor(a + "query.bias", D).toFloatArray(), 0, bias, 0, D);
                System.arraycopy(ck.tensor(a + "key.bias", D).toFloatArray(), 0, bias, D, D);
                System.arraycopy(ck.tensor(a + "value.bias", D).toFloatArray(), 0, bias, 2 * D, D);
                qkvB = backend.constant(bias);
            }
            layers[i] = new Layer(vector(p + "layernorm_before.weight", D), vector(p + "layernorm_before.bias", D),
                    backend.stack(D, query, key, value), qkvB,
                    backend.matrix(ck.tensor(p + "attention.output.dense.weight", D, D), D, D), vector(p + "attention.output.dense.bias", D),
                    vector(p + "layernorm_after.weight", D), vector(p + "layernorm_after.bias", D),
                    backend.matrix(ck.tensor(p + "intermediate.dense.weight", F, D), F, D), vector(p + "intermediate.dense.bias", F),
                    backend.matrix(ck.tensor(p + "output.dense.weight", D, F), D, F), vector(p + "output.dense.bias", D),
                    query, key, value);
        }
        lnW = vector("vit.layernorm.weight", D);
        lnB = vector("vit.layernorm.bias", D);
        classes = ck.tensor("classifier.weight").dim(0);
        classifier = backend.matrix(ck.tensor("classifier.weight", classes, D), classes, D);
        classifierB = vector("classifier.bias", classes);
    }

    private Buffer vector(String name, int n) {
        return backend.constant(checkpoint.tensor(name, n).toFloatArray());
    }

    public static ViTModel load(Path dir, Backend backend) {
        ViTConfig config = ViTConfig.from(ConfigFile.in(dir));
        return Checkpoint.openFor(dir, ck -> new ViTModel(dir, config, ck, backend));
    }

    /** On the CPU. */
    public static ViTModel load(Path dir) {
        return load(dir, CpuBackend.INSTANCE);
    }

    public ViTConfig config() {
        return config;
    }

    @Override
    public Backend backend() {
        return backend;
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
    public int clsPosition() {
        return 0;
    }

    @Override
    public int layers() {
        return config.layers();
    }

    @Override
    public int imageSize() {
        return config.imageSize();
    }

    @Override
    public float[] classify(float[] pixels, TraceRecorder trace) {
        return forward(new float[][]{pixels}, trace, null)[0];
    }

    @Override
    public float[][] classifyBatch(float[][] images) {
        return forward(images, null, null);
    }

    private float[][] forward(float[][] images, TraceRecorder trace, Saved saved) {
        return ImageBatch.classify(backend, images, config.channels(), config.imageSize(), classes,
                (f, pixels, B, logits) -> run(f, pixels, B, trace, saved, logits));
    }

    /** What the reverse pass reads of one image's forward, per layer: the block's input [T, D], qkv [T, 3D] before its bias, probs [H, T, T], context [T, D]. */
    private record Saved(float[][] streams, float[][] qkv, float[][] probs, float[][] context) {
        Saved(int layers) {
            this(new float[layers + 1][], new float[layers][], new float[layers][], new float[layers][]);
        }
    }

    /**
     * The forward pass over B images [B, C, S, S] into logits [B, K]: [cls; patch_proj(patches)] +
     * position embeddings, then x = x + Attn(LN(x)), x = x + MLP(LN(x)) per block, and the final
     * layernorm and classifier on the cls rows. Hidden states (the first image's) as transformers' ViTModel returns
     * them: the stream entering each layer, then the last layer's output (before the final layernorm).
     */
    private void run(Backend.Frame f, Buffer pixels, int B, TraceRecorder trace, Saved saved, Buffer logits) {
        int T = config.tokens(), M = T - 1, D = config.hiddenSize(), H = config.heads(), dh = D / H, F = config.intermediateSize();
        int patchLength = config.channels() * config.patchSize() * config.patchSize(), rows = B * T;
        float eps = config.eps();
        boolean hiddenStates = trace != null && trace.recordsHiddenStates();
        Buffer columns = f.floats((long) B * M * patchLength), embedded = f.floats((long) B * M * D);
        Buffer x = f.floats((long) rows * D), normed = f.floats((long) rows * D), hidden = f.floats((long) rows * D);   // [B·T, D]
        Buffer qkv = f.floats((long) rows * 3 * D), context = f.floats((long) rows * D), mlp = f.floats((long) rows * F);
        Buffer probs = trace != null || saved != null ? f.floats((long) B * H * T * T) : null;   // [B, H, T, T]
        backend.im2col(columns, pixels, B, config.channels(), config.imageSize(), config.patchSize(), config.patchSize(), patches.grid());
        backend.linear(embedded, D, columns, patchLength, B * M, patchProj, null);
        backend.assembleTokens(x, embedded, patchBias, cls, position, B, M, D, 0);
        for (int i = 0; i < layers.length; i++) {
            Layer w = layers[i];
            if (saved != null) saved.streams()[i] = backend.read(x, T * D);
            if (hiddenStates) trace.recordHiddenState(i == 0 ? "embeddings" : "layer " + (i - 1), T, () -> backend.read(x, T * D));
            backend.layernorm(normed, D, x, D, w.ln1W(), w.ln1B(), rows, D, eps);           // x = x + Attn(LN(x))
            backend.linear(qkv, 3 * D, normed, D, rows, w.qkv(), null);
            backend.attention(context, qkv, w.qkvB(), B, T, H, dh, probs);
            if (trace != null && trace.wants(i)) {
                float[] image0 = backend.read(probs, H * T * T);
                trace.record(i, () -> new AttentionTrace(H, T, image0));
            }
            if (saved != null) {
                saved.qkv()[i] = backend.read(qkv, T * 3 * D);
                saved.probs()[i] = backend.read(probs, H * T * T);
                saved.context()[i] = backend.read(context, T * D);
            }
            backend.linear(hidden, D, context, D, rows, w.attnOut(), w.attnOutB());
            backend.add(x, hidden, (long) rows * D);
            backend.layernorm(normed, D, x, D, w.ln2W(), w.ln2B(), rows, D, eps);            // x = x + MLP(LN(x))
            backend.linear(mlp, F, normed, D, rows, w.fc1(), w.fc1B());
            backend.biasActivation(mlp, null, rows, F, Backend.Activation.GELU);
            backend.linear(hidden, D, mlp, F, rows, w.fc2(), w.fc2B());
            backend.add(x, hidden, (long) rows * D);
        }
        if (saved != null) saved.streams()[layers.length] = backend.read(x, T * D);
        if (hiddenStates) trace.recordHiddenState("layer " + (layers.length - 1), T, () -> backend.read(x, T * D));
        Buffer clsNormed = f.floats((long) B * D);                          // final layernorm of the cls rows only
        backend.layernorm(clsNormed, D, x, T * D, lnW, lnB, B, D, eps);
        backend.linear(logits, classes, clsNormed, D, B, classifier, classifierB);
    }

    /**
     * Chefer et al.'s gradients (DESIGN §7): after the forward pass, back-propagates logits[target] and
     * records, for each wanted layer, ∂logit/∂A_h [H, T, T]. Layers are recomputed one at a time on the
     * way back, so the reverse pass holds one layer's tensors. On a GPU the reverse pass runs on this
     * checkpoint's CPU view.
     */
    @Override
    public float[] classifyWithGradients(float[] pixels, int target, TraceRecorder trace) {
        if (backend.isGpu()) {
            synchronized (this) {
                if (reverse == null) reverse = new ViTModel(dir, config, checkpoint, CpuBackend.INSTANCE);
            }
            return reverse.classifyWithGradients(pixels, target, trace);
        }
        int T = config.tokens(), D = config.hiddenSize(), H = config.heads(), dh = D / H, F = config.intermediateSize();
        float eps = config.eps();
        Saved saved = new Saved(layers.length);
        float[] logits = forward(new float[][]{pixels}, trace, saved)[0];
        int explained = ImageClassifier.checkTarget(target, logits);
        Tensor classifierWeight = CpuBackend.tensor(classifier);

        float[] dClsOut = new float[D];                                     // ∂logit/∂LayerNorm(cls) = classifier row
        for (int j = 0; j < D; j++) dClsOut[j] = classifierWeight.getFloat((long) explained * D + j);
        float[] grad = new float[T * D];                                    // ∂logit/∂stream [T, D]; cls is row 0
        Backward.layernorm(grad, dClsOut, saved.streams()[layers.length], array(lnW), eps, 1, D);

        float[] tmp = new float[T * D];
        float scale = (float) (1 / Math.sqrt(dh));
        for (int i = layers.length - 1; i >= 0; i--) {
            Layer w = layers[i];
            float[] x = saved.streams()[i], probs = saved.probs()[i];
            float[] q = new float[T * D], k = new float[T * D], v = new float[T * D];   // q scaled by 1/√dh, as the forward used it
            float[] bias = w.qkvB() == null ? new float[3 * D] : array(w.qkvB()), qkv = saved.qkv()[i];
            for (int t = 0; t < T; t++) {
                for (int j = 0; j < D; j++) {
                    q[t * D + j] = (qkv[t * 3 * D + j] + bias[j]) * scale;
                    k[t * D + j] = qkv[t * 3 * D + D + j] + bias[D + j];
                    v[t * D + j] = qkv[t * 3 * D + 2 * D + j] + bias[2 * D + j];
                }
            }
            float[] attnOut = new float[T * D];                             // recompute the MLP's input x + Attn(LN(x))
            backend.linear(wrap(attnOut), D, wrap(saved.context()[i]), D, T, w.attnOut(), w.attnOutB());
            float[] mid = x.clone();
            Elementwise.addInPlace(mid, attnOut, T * D);
            float[] xn2 = new float[T * D], pre = new float[T * F];
            backend.layernorm(wrap(xn2), D, wrap(mid), D, w.ln2W(), w.ln2B(), T, D, eps);
            backend.linear(wrap(pre), F, wrap(xn2), D, T, w.fc1(), w.fc1B());

            float[] dAct = new float[T * F];                                // MLP: through output.dense, GELU, intermediate.dense
            Backward.linear(dAct, grad, T, CpuBackend.tensor(w.fc2()));
            Backward.gelu(dAct, dAct, pre, T * F);
            Backward.linear(tmp, dAct, T, CpuBackend.tensor(w.fc1()));
            float[] dMid = new float[T * D];
            Backward.layernorm(dMid, tmp, mid, array(w.ln2W()), eps, T, D);
            Elementwise.addInPlace(dMid, grad, T * D);                     // plus the residual path

            float[] dContext = new float[T * D];                            // attention: through output.dense
            Backward.linear(dContext, dMid, T, CpuBackend.tensor(w.attnOut()));
            float[] dProbs = new float[H * T * T], dq = new float[T * D], dk = new float[T * D], dv = new float[T * D];
            for (int h = 0; h < H; h++) {
                int p = h * T * T;
                for (int r = 0; r < T; r++) {
                    for (int c = 0; c < T; c++) {                           // dA_h = dContext_h · V_hᵀ
                        float acc = 0;
                        for (int j = 0; j < dh; j++) acc += dContext[r * D + h * dh + j] * v[c * D + h * dh + j];
                        dProbs[p + r * T + c] = acc;
                    }
                    for (int c = 0; c < T; c++) {                           // dV_h += A_hᵀ · dContext_h
                        float pr = probs[p + r * T + c];
                        for (int j = 0; j < dh; j++) dv[c * D + h * dh + j] += pr * dContext[r * D + h * dh + j];
                    }
                }
            }
            trace.recordAttentionGradient(i, dProbs::clone);
            for (int h = 0; h < H; h++) {
                int p = h * T * T;
                Backward.softmaxRows(dProbs, probs, p, T, T);               // now ∂/∂(Q_h K_hᵀ/√dh)
                for (int r = 0; r < T; r++) {
                    for (int c = 0; c < T; c++) {
                        float ds = dProbs[p + r * T + c];
                        if (ds == 0) continue;
                        for (int j = 0; j < dh; j++) {
                            dq[r * D + h * dh + j] += ds * k[c * D + h * dh + j] * scale;
                            dk[c * D + h * dh + j] += ds * q[r * D + h * dh + j];   // q is already scaled
                        }
                    }
                }
            }
            float[] dxn = new float[T * D];
            Backward.linear(dxn, dq, T, w.query());
            Backward.linear(tmp, dk, T, w.key());
            Elementwise.addInPlace(dxn, tmp, T * D);
            Backward.linear(tmp, dv, T, w.value());
            Elementwise.addInPlace(dxn, tmp, T * D);
            Backward.layernorm(grad, dxn, x, array(w.ln1W()), eps, T, D);
            Elementwise.addInPlace(grad, dMid, T * D);                     // grad now ∂logit/∂(layer i's input)
        }
        trace.recordInputGradient(patches.backward(Arrays.copyOfRange(grad, D, T * D)));   // cls is row 0
        return logits;
    }

    @Override
    public void close() {
        backend.closeWith(checkpoint::close);
    }

    @Override
    public String toString() {
        return "ViT " + Arrays.asList(config.layers() + " layers", "D=" + config.hiddenSize(), "H=" + config.heads(), classes + " classes")
                + (backend.isGpu() ? " on " + backend : "") + " from " + dir;
    }
}
