package org.mambalens.engine.model.vim;

import org.mambalens.engine.io.Checkpoint;
import org.mambalens.engine.io.ConfigFile;
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
        Checkpoint checkpoint = Checkpoint.open(dir);
        try {
            return new VimModel(config, checkpoint);
        } catch (RuntimeException e) {
            checkpoint.close();
            throw e;
        }
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
    public int layers() {
        return config.depth();
    }

    @Override
    public int imageSize() {
        return config.imageSize();
    }

    @Override
    public float[] classify(float[] pixels, TraceRecorder trace) {
        int C = config.channels(), S = config.imageSize(), D = config.embedDim(), T = config.tokens();
        if (pixels.length != C * S * S) {
            throw new IllegalArgumentException("image of " + pixels.length + " values, the model takes [" + C + ", " + S + ", " + S + "]");
        }
        float[] residual = embed(pixels);                                  // [T, D], F32
        float[] hidden = null, normed = new float[T * D];
        for (int i = 0; i < layers.length; i++) {
            if (hidden != null) Elementwise.addInPlace(residual, hidden, T * D);   // residual = residual + hidden
            Elementwise.rmsnorm(normed, residual, layers[i].norm(), config.eps(), T, D);
            hidden = mixer(i, normed, trace);                              // hidden = BiMamba(RMSNorm(residual))
        }
        Elementwise.addInPlace(residual, hidden, T * D);
        float[] clsOut = new float[D];
        Elementwise.rmsnorm(clsOut, java.util.Arrays.copyOfRange(residual, config.clsPosition() * D, (config.clsPosition() + 1) * D),
                normF, config.eps(), 1, D);
        float[] logits = new float[numClasses()];
        MatMul.matvec(logits, 0, clsOut, 0, head, headBias);
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

    private static float[] flipRows(float[] m, int rows, int cols) {
        float[] out = new float[m.length];
        for (int r = 0; r < rows; r++) System.arraycopy(m, r * cols, out, (rows - 1 - r) * cols, cols);
        return out;
    }

    @Override
    public void close() {
        checkpoint.close();
    }
}
