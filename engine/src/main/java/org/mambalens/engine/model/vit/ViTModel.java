package org.mambalens.engine.model.vit;

import org.mambalens.engine.io.Checkpoint;
import org.mambalens.engine.io.ConfigFile;
import org.mambalens.engine.kernels.Backward;
import org.mambalens.engine.kernels.Elementwise;
import org.mambalens.engine.kernels.MatMul;
import org.mambalens.engine.model.ImageClassifier;
import org.mambalens.engine.model.PatchEmbedding;
import org.mambalens.engine.tensor.Tensor;
import org.mambalens.engine.trace.AttentionTrace;
import org.mambalens.engine.trace.TraceRecorder;

/**
 * ViT / DeiT image classifier (transformers' {@code ViTForImageClassification}, SPEC §6), read top to
 * bottom: weights, then the forward pass. Pre-norm blocks, multi-head softmax attention, exact GELU,
 * the classifier on the cls token.
 *
 * <p>Shapes: T = tokens (cls + patches), D = hidden, H = heads, dh = D / H, F = intermediate,
 * C·P·P = one flattened patch, K = classes.
 */
public final class ViTModel implements ImageClassifier {

    /** One encoder block. Tensors are mapped views; float[] are small and widened at load. */
    record Layer(float[] ln1W, float[] ln1B,          // [D] layernorm_before
                 Tensor query, float[] queryB,        // [D, D], [D] or null
                 Tensor key, float[] keyB,
                 Tensor value, float[] valueB,
                 Tensor attnOut, float[] attnOutB,    // [D, D], [D]
                 float[] ln2W, float[] ln2B,          // [D] layernorm_after
                 Tensor fc1, float[] fc1B,            // [F, D], [F] intermediate.dense
                 Tensor fc2, float[] fc2B) {          // [D, F], [D] output.dense
    }

    private final ViTConfig config;
    private final Checkpoint checkpoint;
    private final PatchEmbedding patches; // Conv2d(C → D, kernel = stride = P)
    private final float[] cls;           // [D]
    private final float[] position;      // [T, D]
    private final Layer[] layers;
    private final float[] lnW, lnB;      // [D] final layernorm
    private final Tensor classifier;     // [K, D]
    private final float[] classifierB;   // [K]

    private ViTModel(ViTConfig c, Checkpoint ck) {
        this.config = c;
        this.checkpoint = ck;
        int D = c.hiddenSize(), P = c.patchSize(), C = c.channels(), F = c.intermediateSize();
        patches = PatchEmbedding.load(ck, "vit.embeddings.patch_embeddings.projection.weight",
                "vit.embeddings.patch_embeddings.projection.bias", D, C, P, P, c.imageSize());
        cls = ck.tensor("vit.embeddings.cls_token", 1, 1, D).toFloatArray();
        position = ck.tensor("vit.embeddings.position_embeddings", 1, c.tokens(), D).toFloatArray();
        layers = new Layer[c.layers()];
        for (int i = 0; i < layers.length; i++) {
            String p = "vit.encoder.layer." + i + ".";
            String a = p + "attention.attention.";
            layers[i] = new Layer(
                    ck.tensor(p + "layernorm_before.weight", D).toFloatArray(), ck.tensor(p + "layernorm_before.bias", D).toFloatArray(),
                    ck.tensor(a + "query.weight", D, D), c.qkvBias() ? ck.tensor(a + "query.bias", D).toFloatArray() : null,
                    ck.tensor(a + "key.weight", D, D), c.qkvBias() ? ck.tensor(a + "key.bias", D).toFloatArray() : null,
                    ck.tensor(a + "value.weight", D, D), c.qkvBias() ? ck.tensor(a + "value.bias", D).toFloatArray() : null,
                    ck.tensor(p + "attention.output.dense.weight", D, D), ck.tensor(p + "attention.output.dense.bias", D).toFloatArray(),
                    ck.tensor(p + "layernorm_after.weight", D).toFloatArray(), ck.tensor(p + "layernorm_after.bias", D).toFloatArray(),
                    ck.tensor(p + "intermediate.dense.weight", F, D), ck.tensor(p + "intermediate.dense.bias", F).toFloatArray(),
                    ck.tensor(p + "output.dense.weight", D, F), ck.tensor(p + "output.dense.bias", D).toFloatArray());
        }
        lnW = ck.tensor("vit.layernorm.weight", D).toFloatArray();
        lnB = ck.tensor("vit.layernorm.bias", D).toFloatArray();
        int K = ck.tensor("classifier.weight").dim(0);
        classifier = ck.tensor("classifier.weight", K, D);
        classifierB = ck.tensor("classifier.bias", K).toFloatArray();
    }

    public static ViTModel load(java.nio.file.Path dir) {
        ViTConfig config = ViTConfig.from(ConfigFile.in(dir));
        return Checkpoint.openFor(dir, ck -> new ViTModel(config, ck));
    }

    public ViTConfig config() {
        return config;
    }

    @Override
    public int numClasses() {
        return classifierB.length;
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
        return forward(pixels, trace, null);
    }

    /** The forward pass; when {@code streams} is given, streams[i] receives the input of layer i, [T, D]. */
    private float[] forward(float[] pixels, TraceRecorder trace, float[][] streams) {
        int C = config.channels(), S = config.imageSize(), D = config.hiddenSize(), T = config.tokens();
        ImageClassifier.checkPixels(pixels, C, S);
        float[] x = embed(pixels);                                          // residual stream [T, D]
        float[] xn = new float[T * D];
        for (int i = 0; i < layers.length; i++) {
            Layer w = layers[i];
            if (streams != null) streams[i] = x.clone();
            Elementwise.layernorm(xn, x, w.ln1W(), w.ln1B(), config.eps(), T, D);
            Attention a = attention(w, xn);
            if (trace != null) trace.record(i, () -> new AttentionTrace(config.heads(), T, a.probs().clone()));
            Elementwise.addInPlace(x, a.out(), T * D);                      // x = x + Attn(LN(x))
            Elementwise.layernorm(xn, x, w.ln2W(), w.ln2B(), config.eps(), T, D);
            Elementwise.addInPlace(x, mlp(w, xn, null), T * D);            // x = x + MLP(LN(x))
        }
        if (streams != null) streams[layers.length] = x;
        float[] clsOut = new float[D];                                      // final layernorm of the cls token only
        Elementwise.layernorm(clsOut, x, lnW, lnB, config.eps(), 1, D);
        float[] logits = new float[numClasses()];
        MatMul.matvec(logits, 0, clsOut, 0, classifier, classifierB);
        return logits;
    }

    /** [cls; patch_proj(patches)] + position embeddings, [T, D]. */
    private float[] embed(float[] pixels) {
        int D = config.hiddenSize();
        float[] embedded = patches.apply(pixels);                           // [M, D]
        float[] x = new float[embedded.length + D];
        System.arraycopy(cls, 0, x, 0, D);
        System.arraycopy(embedded, 0, x, D, embedded.length);
        Elementwise.addInPlace(x, position, x.length);
        return x;
    }

    /** One attention sub-layer's tensors: q (already scaled by 1/√dh), k, v, context [T, D]; probs [H, T, T]; out [T, D]. */
    private record Attention(float[] q, float[] k, float[] v, float[] probs, float[] context, float[] out) {
    }

    /** Multi-head softmax attention A_h = softmax(Q_h K_hᵀ / √dh), out = dense(concat_h(A_h V_h)). */
    private Attention attention(Layer w, float[] xn) {
        int T = config.tokens(), D = config.hiddenSize(), H = config.heads(), dh = D / H;
        float[] q = new float[T * D], k = new float[T * D], v = new float[T * D];
        MatMul.matmul(q, 0, D, xn, 0, D, T, w.query(), w.queryB());
        MatMul.matmul(k, 0, D, xn, 0, D, T, w.key(), w.keyB());
        MatMul.matmul(v, 0, D, xn, 0, D, T, w.value(), w.valueB());
        float scale = (float) (1 / Math.sqrt(dh));
        for (int i = 0; i < q.length; i++) q[i] *= scale;
        float[] probs = new float[H * T * T];                               // [H, T, T]
        float[] context = new float[T * D];                                 // heads side by side [T, D]
        for (int h = 0; h < H; h++) {
            MatMul.matmul(probs, h * T * T, T, q, h * dh, D, T, headColumns(k, h, false), null);        // Q_h K_hᵀ
            Elementwise.softmaxRows(probs, h * T * T, T, T);
            MatMul.matmul(context, h * dh, D, probs, h * T * T, T, T, headColumns(v, h, true), null);    // A_h V_h
        }
        float[] out = new float[T * D];
        MatMul.matmul(out, 0, D, context, 0, D, T, w.attnOut(), w.attnOutB());
        return new Attention(q, k, v, probs, context, out);
    }

    /** Head h's columns of a [T, D] matrix as a GEMM weight: [T, dh], or transposed [dh, T]. */
    private Tensor headColumns(float[] m, int h, boolean transposed) {
        int T = config.tokens(), D = config.hiddenSize(), dh = D / config.heads();
        float[] out = new float[T * dh];
        for (int t = 0; t < T; t++) {
            for (int j = 0; j < dh; j++) out[transposed ? j * T + t : t * dh + j] = m[t * D + h * dh + j];
        }
        return transposed ? Tensor.of("head", out, dh, T) : Tensor.of("head", out, T, dh);
    }

    /**
     * Chefer et al.'s gradients (SPEC §7): after the forward pass, back-propagates logits[target] and
     * records, for each wanted layer, ∂logit/∂A_h [H, T, T]. Layers are recomputed one at a time on the
     * way back, so the reverse pass holds one layer's tensors.
     */
    @Override
    public float[] classifyWithGradients(float[] pixels, int target, TraceRecorder trace) {
        int T = config.tokens(), D = config.hiddenSize(), H = config.heads(), dh = D / H, F = config.intermediateSize();
        float[][] streams = new float[layers.length + 1][];
        float[] logits = forward(pixels, trace, streams);
        int explained = ImageClassifier.checkTarget(target, logits);

        float[] dClsOut = new float[D];                                     // ∂logit/∂LayerNorm(cls) = classifier row
        for (int j = 0; j < D; j++) dClsOut[j] = classifier.getFloat((long) explained * D + j);
        float[] grad = new float[T * D];                                    // ∂logit/∂stream [T, D]; cls is row 0
        Backward.layernorm(grad, dClsOut, streams[layers.length], lnW, config.eps(), 1, D);

        float[] xn = new float[T * D], tmp = new float[T * D];
        for (int i = layers.length - 1; i >= 0; i--) {
            Layer w = layers[i];
            float[] x = streams[i];                                         // recompute the layer from its input
            Elementwise.layernorm(xn, x, w.ln1W(), w.ln1B(), config.eps(), T, D);
            Attention a = attention(w, xn);
            float[] mid = x.clone();                                        // x + Attn(LN(x)), the MLP's input
            Elementwise.addInPlace(mid, a.out(), T * D);
            float[] xn2 = new float[T * D];
            Elementwise.layernorm(xn2, mid, w.ln2W(), w.ln2B(), config.eps(), T, D);
            float[] pre = new float[T * F];
            mlp(w, xn2, pre);

            float[] dAct = new float[T * F];                                // MLP: through output.dense, GELU, intermediate.dense
            Backward.linear(dAct, grad, T, w.fc2());
            Backward.gelu(dAct, dAct, pre, T * F);
            Backward.linear(tmp, dAct, T, w.fc1());
            float[] dMid = new float[T * D];
            Backward.layernorm(dMid, tmp, mid, w.ln2W(), config.eps(), T, D);
            Elementwise.addInPlace(dMid, grad, T * D);                     // plus the residual path

            float[] dContext = new float[T * D];                            // attention: through output.dense
            Backward.linear(dContext, dMid, T, w.attnOut());
            float[] dProbs = new float[H * T * T], dq = new float[T * D], dk = new float[T * D], dv = new float[T * D];
            for (int h = 0; h < H; h++) {
                int p = h * T * T;
                for (int r = 0; r < T; r++) {
                    for (int c = 0; c < T; c++) {                           // dA_h = dContext_h · V_hᵀ
                        float acc = 0;
                        for (int j = 0; j < dh; j++) acc += dContext[r * D + h * dh + j] * a.v()[c * D + h * dh + j];
                        dProbs[p + r * T + c] = acc;
                    }
                    for (int c = 0; c < T; c++) {                           // dV_h += A_hᵀ · dContext_h
                        float pr = a.probs()[p + r * T + c];
                        for (int j = 0; j < dh; j++) dv[c * D + h * dh + j] += pr * dContext[r * D + h * dh + j];
                    }
                }
            }
            trace.recordAttentionGradient(i, dProbs::clone);
            float scale = (float) (1 / Math.sqrt(dh));
            for (int h = 0; h < H; h++) {
                int p = h * T * T;
                Backward.softmaxRows(dProbs, a.probs(), p, T, T);           // now ∂/∂(Q_h K_hᵀ/√dh)
                for (int r = 0; r < T; r++) {
                    for (int c = 0; c < T; c++) {
                        float ds = dProbs[p + r * T + c];
                        if (ds == 0) continue;
                        for (int j = 0; j < dh; j++) {
                            dq[r * D + h * dh + j] += ds * a.k()[c * D + h * dh + j] * scale;
                            dk[c * D + h * dh + j] += ds * a.q()[r * D + h * dh + j];   // q is already scaled
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
            Backward.layernorm(grad, dxn, x, w.ln1W(), config.eps(), T, D);
            Elementwise.addInPlace(grad, dMid, T * D);                     // grad now ∂logit/∂(layer i's input)
            streams[i + 1] = null;
        }
        trace.recordInputGradient(patches.backward(java.util.Arrays.copyOfRange(grad, D, T * D)));   // cls is row 0
        return logits;
    }

    /** dense(gelu(dense(x))), [T, D]; {@code preActivation} [T, F], when given, receives dense(x) before the GELU. */
    private float[] mlp(Layer w, float[] xn, float[] preActivation) {
        int T = config.tokens(), D = config.hiddenSize(), F = config.intermediateSize();
        float[] hidden = new float[T * F];
        MatMul.matmul(hidden, 0, F, xn, 0, D, T, w.fc1(), w.fc1B());
        if (preActivation != null) System.arraycopy(hidden, 0, preActivation, 0, T * F);
        Elementwise.gelu(hidden, hidden.length);
        float[] out = new float[T * D];
        MatMul.matmul(out, 0, D, hidden, 0, F, T, w.fc2(), w.fc2B());
        return out;
    }

    @Override
    public void close() {
        checkpoint.close();
    }
}
