package org.mambalens.engine.model.vim;

import org.mambalens.engine.io.Checkpoint;
import org.mambalens.engine.io.ConfigFile;
import org.mambalens.engine.kernels.Backward;
import org.mambalens.engine.kernels.Elementwise;
import org.mambalens.engine.kernels.MatMul;
import org.mambalens.engine.model.ImageClassifier;
import org.mambalens.engine.model.PatchEmbedding;
import org.mambalens.engine.model.mamba.SsmBranch;
import org.mambalens.engine.tensor.Tensor;
import org.mambalens.engine.trace.TraceRecorder;

import java.nio.file.Path;

/**
 * Vision Mamba (hustvl/Vim "bimambav2 … midclstok div2", SPEC §5), read top to bottom: weights, then
 * the forward pass. Patch embedding, a cls token in the middle, position embeddings, blocks of
 * F32 residual + RMSNorm + bidirectional mixer, final RMSNorm, the head on the cls position.
 *
 * <p>Shapes: T tokens (M patches + cls), D = embed_dim, E = inner channels, K = classes.
 * The backward branch runs on the token-reversed sequence; its trace keeps that reversed order
 * (SPEC §5: α = α_fwd + flip(α_bwd)).
 */
public final class VimModel implements ImageClassifier {

    /** One block. Tensors are mapped views; float[] are small and widened at load. */
    record Layer(float[] norm,          // [D]
                 Tensor inProj,         // [2E, D] (shared by both directions)
                 SsmBranch forward,     // conv1d, x_proj, dt_proj, A_log, D
                 SsmBranch backward,    // conv1d_b, x_proj_b, dt_proj_b, A_b_log, D_b
                 Tensor outProj) {      // [D, E]
    }

    private final VimConfig config;
    private final Checkpoint checkpoint;
    private final PatchEmbedding patches; // Conv2d(C → D, kernel P, stride)
    private final float[] cls;          // [D]
    private final float[] position;     // [T, D]
    private final Layer[] layers;
    private final float[] normF;        // [D]
    private final Tensor head;          // [K, D]
    private final float[] headBias;     // [K]

    private VimModel(VimConfig c, Checkpoint ck) {
        this.config = c;
        this.checkpoint = ck;
        int D = c.embedDim(), P = c.patchSize(), C = c.channels(), E = c.innerSize(), N = c.stateSize();
        patches = PatchEmbedding.load(ck, "patch_embed.proj.weight", "patch_embed.proj.bias", D, C, P, c.stride(), c.imageSize());
        cls = ck.tensor("cls_token", 1, 1, D).toFloatArray();
        position = ck.tensor("pos_embed", 1, c.tokens(), D).toFloatArray();
        layers = new Layer[c.depth()];
        for (int i = 0; i < layers.length; i++) {
            String p = "layers." + i + ".mixer.";
            layers[i] = new Layer(ck.tensor("layers." + i + ".norm.weight", D).toFloatArray(),
                    ck.tensor(p + "in_proj.weight", 2L * E, D),
                    SsmBranch.load(ck, p, "", "A_log", true, E, N, c.dtRank(), c.convKernel()),
                    SsmBranch.load(ck, p, "_b", "A_b_log", true, E, N, c.dtRank(), c.convKernel()),
                    ck.tensor(p + "out_proj.weight", D, E));
        }
        normF = ck.tensor("norm_f.weight", D).toFloatArray();
        head = ck.tensor("head.weight", c.numClasses(), D);
        headBias = ck.tensor("head.bias", c.numClasses()).toFloatArray();
    }

    public static VimModel load(Path dir) {
        VimConfig config = VimConfig.from(ConfigFile.in(dir));
        return Checkpoint.openFor(dir, ck -> new VimModel(config, ck));
    }

    public VimConfig config() {
        return config;
    }

    @Override
    public int numClasses() {
        return config.numClasses();
    }

    @Override
    public int channels() {
        return config.channels();
    }

    @Override
    public int clsPosition() {
        return config.clsPosition();
    }

    @Override
    public int layers() {
        return config.depth();
    }

    @Override
    public int imageSize() {
        return config.imageSize();
    }

    @Override
    public float[] classify(float[] pixels, TraceRecorder trace) {
        return forward(pixels, trace, null);
    }

    /**
     * The forward pass; when {@code streams} is given, streams[i] receives the residual stream entering
     * layer i and streams[depth] the final sum that RMSNorm_f reads, each [T, D].
     */
    private float[] forward(float[] pixels, TraceRecorder trace, float[][] streams) {
        int C = config.channels(), S = config.imageSize(), D = config.embedDim(), T = config.tokens();
        ImageClassifier.checkPixels(pixels, C, S);
        float[] residual = embed(pixels);                                  // [T, D], F32
        float[] hidden = null, normed = new float[T * D];
        for (int i = 0; i < layers.length; i++) {
            if (hidden != null) Elementwise.addInPlace(residual, hidden, T * D);   // residual = residual + hidden
            if (streams != null) streams[i] = residual.clone();
            Elementwise.rmsnorm(normed, residual, layers[i].norm(), config.eps(), T, D);
            hidden = mixer(i, normed, trace);                              // hidden = BiMamba(RMSNorm(residual))
        }
        Elementwise.addInPlace(residual, hidden, T * D);
        if (streams != null) streams[layers.length] = residual;
        float[] clsOut = new float[D];
        Elementwise.rmsnorm(clsOut, clsRow(residual), normF, config.eps(), 1, D);
        float[] logits = new float[numClasses()];
        MatMul.matvec(logits, 0, clsOut, 0, head, headBias);
        return logits;
    }

    private float[] clsRow(float[] stream) {
        int D = config.embedDim(), at = config.clsPosition();
        return java.util.Arrays.copyOfRange(stream, at * D, (at + 1) * D);
    }

    /**
     * Mamba-Attribution's gradients (SPEC §7): after the forward pass, back-propagates logits[target] and
     * records, for each wanted layer, the gradient with respect to the residual stream entering it [T, D].
     * Layers are recomputed one at a time on the way back, so the reverse pass holds one layer's tensors.
     */
    @Override
    public float[] classifyWithGradients(float[] pixels, int target, TraceRecorder trace) {
        int T = config.tokens(), D = config.embedDim(), E = config.innerSize();
        float[][] streams = new float[layers.length + 1][];
        float[] logits = forward(pixels, trace, streams);
        int k = ImageClassifier.checkTarget(target, logits);

        float[] dClsOut = new float[D];                                    // ∂logit/∂RMSNorm_f(cls) = head row k
        for (int j = 0; j < D; j++) dClsOut[j] = head.getFloat((long) k * D + j);
        float[] grad = new float[T * D];                                   // ∂logit/∂stream, [T, D]
        float[] dCls = new float[D];
        Backward.rmsnorm(dCls, dClsOut, clsRow(streams[layers.length]), normF, config.eps(), 1, D);
        System.arraycopy(dCls, 0, grad, config.clsPosition() * D, D);

        float[] normed = new float[T * D], dNormed = new float[T * D], dStream = new float[T * D];
        for (int i = layers.length - 1; i >= 0; i--) {                     // stream_{i+1} = stream_i + mixer(norm(stream_i))
            Layer w = layers[i];
            Elementwise.rmsnorm(normed, streams[i], w.norm(), config.eps(), T, D);
            float[] xz = new float[T * 2 * E];
            MatMul.matmul(xz, 0, 2 * E, normed, 0, D, T, w.inProj(), null);
            float[] dy = new float[T * E];                                 // through out_proj (and the div2 halving)
            Backward.linear(dy, grad, T, w.outProj());
            if (config.divideOut()) for (int j = 0; j < dy.length; j++) dy[j] *= 0.5f;
            float[] dxz = w.forward().backward(xz, T, dy);
            float[] dxzBack = flipRows(w.backward().backward(flipRows(xz, T, 2 * E), T, flipRows(dy, T, E)), T, 2 * E);
            Elementwise.addInPlace(dxz, dxzBack, dxz.length);
            Backward.linear(dNormed, dxz, T, w.inProj());
            Backward.rmsnorm(dStream, dNormed, streams[i], w.norm(), config.eps(), T, D);
            Elementwise.addInPlace(grad, dStream, T * D);
            trace.recordResidualGradient(i, grad::clone);
            streams[i + 1] = null;
        }
        float[] dPatches = new float[(T - 1) * D];                         // the embedding: drop the cls row
        int at = config.clsPosition();
        System.arraycopy(grad, 0, dPatches, 0, at * D);
        System.arraycopy(grad, (at + 1) * D, dPatches, at * D, (T - 1 - at) * D);
        trace.recordInputGradient(patches.backward(dPatches));
        return logits;
    }

    /** Patch embedding with the cls token inserted at its position, plus position embeddings: [T, D]. */
    private float[] embed(float[] pixels) {
        int D = config.embedDim(), at = config.clsPosition();
        float[] embedded = patches.apply(pixels);                           // [M, D]
        float[] x = new float[embedded.length + D];
        System.arraycopy(embedded, 0, x, 0, at * D);
        System.arraycopy(cls, 0, x, at * D, D);
        System.arraycopy(embedded, at * D, x, (at + 1) * D, embedded.length - at * D);
        Elementwise.addInPlace(x, position, x.length);
        return x;
    }

    /** out_proj((y_fwd + flip(y_bwd(flip(xz)))) / 2): both branches gate with their own silu(z). */
    private float[] mixer(int i, float[] v, TraceRecorder trace) {
        Layer w = layers[i];
        int T = config.tokens(), D = config.embedDim(), E = config.innerSize(), K = config.convKernel(), N = config.stateSize();
        float[] xz = new float[T * 2 * E];                                 // [T, 2E]
        MatMul.matmul(xz, 0, 2 * E, v, 0, D, T, w.inProj(), null);
        float[] y = w.forward().run(xz, T, new float[(K - 1) * E], new float[N * E], trace, i, TraceRecorder.Direction.FORWARD);
        float[] yBack = w.backward().run(flipRows(xz, T, 2 * E), T, new float[(K - 1) * E], new float[N * E], trace, i,
                TraceRecorder.Direction.BACKWARD);
        yBack = flipRows(yBack, T, E);
        Elementwise.addInPlace(y, yBack, T * E);
        if (config.divideOut()) for (int j = 0; j < y.length; j++) y[j] *= 0.5f;
        float[] out = new float[T * D];
        MatMul.matmul(out, 0, D, y, 0, E, T, w.outProj(), null);
        return out;
    }

    /** The rows of a row-major matrix in reverse order (the backward branch's token order). */
    static float[] flipRows(float[] m, int rows, int cols) {
        float[] out = new float[m.length];
        for (int r = 0; r < rows; r++) System.arraycopy(m, r * cols, out, (rows - 1 - r) * cols, cols);
        return out;
    }

    @Override
    public void close() {
        checkpoint.close();
    }
}
