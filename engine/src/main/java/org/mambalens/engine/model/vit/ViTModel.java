package org.mambalens.engine.model.vit;

import org.mambalens.engine.io.Checkpoint;
import org.mambalens.engine.io.ConfigFile;
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
        Checkpoint checkpoint = Checkpoint.open(dir);
        try {
            return new ViTModel(config, checkpoint);
        } catch (RuntimeException e) {
            checkpoint.close();
            throw e;
        }
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
    public int layers() {
        return config.layers();
    }

    @Override
    public int imageSize() {
        return config.imageSize();
    }

    @Override
    public float[] classify(float[] pixels, TraceRecorder trace) {
        int C = config.channels(), S = config.imageSize(), D = config.hiddenSize(), T = config.tokens();
        if (pixels.length != C * S * S) {
            throw new IllegalArgumentException("image of " + pixels.length + " values, the model takes [" + C + ", " + S + ", " + S + "]");
        }
        float[] x = embed(pixels);                                          // residual stream [T, D]
        float[] xn = new float[T * D];
        for (int i = 0; i < layers.length; i++) {
            Layer w = layers[i];
            Elementwise.layernorm(xn, x, w.ln1W(), w.ln1B(), config.eps(), T, D);
            Elementwise.addInPlace(x, attention(i, w, xn, trace), T * D);   // x = x + Attn(LN(x))
            Elementwise.layernorm(xn, x, w.ln2W(), w.ln2B(), config.eps(), T, D);
            Elementwise.addInPlace(x, mlp(w, xn), T * D);                  // x = x + MLP(LN(x))
        }
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

    /** Multi-head softmax attention A_h = softmax(Q_h K_hᵀ / √dh), out = dense(concat_h(A_h V_h)), [T, D]. */
    private float[] attention(int index, Layer w, float[] xn, TraceRecorder trace) {
        int T = config.tokens(), D = config.hiddenSize(), H = config.heads(), dh = D / H;
        float[] q = new float[T * D], k = new float[T * D], v = new float[T * D];
        MatMul.matmul(q, 0, D, xn, 0, D, T, w.query(), w.queryB());
        MatMul.matmul(k, 0, D, xn, 0, D, T, w.key(), w.keyB());
        MatMul.matmul(v, 0, D, xn, 0, D, T, w.value(), w.valueB());
        float scale = (float) (1 / Math.sqrt(dh));
        for (int i = 0; i < q.length; i++) q[i] *= scale;
        float[] probs = new float[H * T * T];                               // [H, T, T]
        float[] context = new float[T * D];                                 // heads side by side [T, D]
        float[] kh = new float[T * dh], vhT = new float[dh * T];
        for (int h = 0; h < H; h++) {
            for (int t = 0; t < T; t++) {
                System.arraycopy(k, t * D + h * dh, kh, t * dh, dh);                              // K_h [T, dh]
                for (int j = 0; j < dh; j++) vhT[j * T + t] = v[t * D + h * dh + j];                // V_hᵀ [dh, T]
            }
            MatMul.matmul(probs, h * T * T, T, q, h * dh, D, T, Tensor.of("k", kh, T, dh), null);   // Q_h K_hᵀ
            Elementwise.softmaxRows(probs, h * T * T, T, T);
            MatMul.matmul(context, h * dh, D, probs, h * T * T, T, T, Tensor.of("vT", vhT, dh, T), null);  // A_h V_h
        }
        if (trace != null) trace.recordAttention(index, () -> new AttentionTrace(H, T, probs.clone()));
        float[] out = new float[T * D];
        MatMul.matmul(out, 0, D, context, 0, D, T, w.attnOut(), w.attnOutB());
        return out;
    }

    /** dense(gelu(dense(x))), [T, D]. */
    private float[] mlp(Layer w, float[] xn) {
        int T = config.tokens(), D = config.hiddenSize(), F = config.intermediateSize();
        float[] hidden = new float[T * F];
        MatMul.matmul(hidden, 0, F, xn, 0, D, T, w.fc1(), w.fc1B());
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
