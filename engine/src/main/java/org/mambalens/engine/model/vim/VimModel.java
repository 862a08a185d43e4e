package org.mambalens.engine.model.vim;

import org.mambalens.engine.backend.Backend;
import org.mambalens.engine.backend.Buffer;
import org.mambalens.engine.backend.CpuBackend;
import org.mambalens.engine.backend.Matrix;
import org.mambalens.engine.io.Checkpoint;
import org.mambalens.engine.io.ConfigFile;
import org.mambalens.engine.kernels.Backward;
import org.mambalens.engine.kernels.Elementwise;
import org.mambalens.engine.kernels.MatMul;
import org.mambalens.engine.model.ImageBatch;
import org.mambalens.engine.model.ImageClassifier;
import org.mambalens.engine.model.PatchEmbedding;
import org.mambalens.engine.model.mamba.SsmBranch;
import org.mambalens.engine.tensor.Matrices;
import org.mambalens.engine.tensor.Tensor;
import org.mambalens.engine.trace.TraceRecorder;

import java.nio.file.Path;
import java.util.Arrays;

import static org.mambalens.engine.backend.CpuBackend.array;

/**
 * Vision Mamba (hustvl/Vim "bimambav2 … midclstok div2", DESIGN §5), read top to bottom: weights, then
 * the forward pass. Patch embedding, a cls token in the middle, position embeddings, blocks of
 * F32 residual + RMSNorm + bidirectional mixer, final RMSNorm, the head on the cls position. Written
 * once over a {@link Backend}: the CPU, or a batch of images at a time on a GPU.
 *
 * <p>Shapes: T tokens (M patches + cls), D = embed_dim, E = inner channels, K = classes.
 * The backward branch runs on the token-reversed sequence; its trace keeps that reversed order
 * (DESIGN §5: α = α_fwd + flip(α_bwd)).
 */
public final class VimModel implements ImageClassifier {

    /** One block; the backward branch runs on the token-reversed sequence. */
    record Layer(Buffer norm,           // [D]
                 Matrix inProj,         // [2E, D] (shared by both directions)
                 SsmBranch forward,     // conv1d, x_proj, dt_proj, A_log, D
                 SsmBranch backward,    // conv1d_b, x_proj_b, dt_proj_b, A_b_log, D_b
                 Matrix outProj) {      // [D, E]
    }

    private final Path dir;
    private final VimConfig config;
    private final Checkpoint checkpoint;
    private final Backend backend;
    private final PatchEmbedding patches; // Conv2d(C → D, kernel Q, stride), for the reverse pass
    private final Matrix patchProj;     // [D, C·Q·Q]
    private final Buffer patchBias, cls, position;   // [D], [D], [T, D]
    private final Layer[] layers;
    private final Buffer normF;         // [D]
    private final Matrix head;          // [K, D]
    private final Buffer headBias;      // [K]
    private VimModel reverse;           // on a GPU: this checkpoint on the CPU backend, for the reverse pass

    private VimModel(Path dir, VimConfig c, Checkpoint ck, Backend backend) {
        this.dir = dir;
        this.config = c;
        this.checkpoint = ck;
        this.backend = backend;
        int D = c.embedDim(), Q = c.patchSize(), C = c.channels(), E = c.innerSize(), N = c.stateSize();
        patches = PatchEmbedding.load(ck, "patch_embed.proj.weight", "patch_embed.proj.bias", D, C, Q, c.stride(), c.imageSize());
        patchProj = backend.matrix(patches.proj(), D, C * Q * Q);
        patchBias = backend.constant(patches.bias());
        cls = backend.constant(ck.tensor("cls_token", 1, 1, D).toFloatArray());
        position = backend.constant(ck.tensor("pos_embed", 1, c.tokens(), D).toFloatArray());
        layers = new Layer[c.depth()];
        for (int i = 0; i < layers.length; i++) {
            String p = "layers." + i + ".mixer.";
            layers[i] = new Layer(backend.constant(ck.tensor("layers." + i + ".norm.weight", D).toFloatArray()),
                    backend.matrix(ck.tensor(p + "in_proj.weight", 2L * E, D), 2 * E, D),
                    SsmBranch.load(backend, ck, p, "", "A_log", true, E, N, c.dtRank(), c.convKernel()),
                    SsmBranch.load(backend, ck, p, "_b", "A_b_log", true, E, N, c.dtRank(), c.convKernel()),
                    backend.matrix(ck.tensor(p + "out_proj.weight", D, E), D, E));
        }
        normF = backend.constant(ck.tensor("norm_f.weight", D).toFloatArray());
        head = backend.matrix(ck.tensor("head.weight", c.numClasses(), D), c.numClasses(), D);
        headBias = backend.constant(ck.tensor("head.bias", c.numClasses()).toFloatArray());
    }

    public static VimModel load(Path dir, Backend backend) {
        VimConfig config = VimConfig.from(ConfigFile.in(dir));
        return Checkpoint.openFor(dir, ck -> new VimModel(dir, config, ck, backend));
    }

    /** On the CPU. */
    public static VimModel load(Path dir) {
        return load(dir, CpuBackend.INSTANCE);
    }

    public VimConfig config() {
        return config;
    }

    @Override
    public Backend backend() {
        return backend;
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
        return forward(new float[][]{pixels}, trace, null)[0];
    }

    @Override
    public float[][] classifyBatch(float[][] images) {
        return forward(images, null, null);
    }

    private float[][] forward(float[][] images, TraceRecorder trace, float[][] streams) {
        return ImageBatch.classify(backend, images, config.channels(), config.imageSize(), config.numClasses(),
                (f, pixels, B, logits) -> run(f, pixels, B, trace, streams, logits));
    }

    /**
     * The forward pass over B images [B, C, S, S] into logits [B, K]: patch embedding, the cls token in the
     * middle, position embeddings, then residual += hidden; hidden = BiMamba(RMSNorm(residual)) per
     * block, and RMSNorm_f and the head on the cls rows. When {@code streams} is given (one image),
     * streams[i] receives the residual stream entering layer i and streams[depth] the final sum, [T, D]. Hidden
     * states (the first image's): the stream entering each layer, then RMSNorm_f of the final sum over every token.
     */
    private void run(Backend.Frame f, Buffer pixels, int B, TraceRecorder trace, float[][] streams, Buffer logits) {
        int T = config.tokens(), M = T - 1, D = config.embedDim(), E = config.innerSize(), at = config.clsPosition();
        int patchLength = config.channels() * config.patchSize() * config.patchSize();
        float eps = config.eps();
        int rows = B * T;
        boolean hiddenStates = trace != null && trace.recordsHiddenStates();
        Buffer columns = f.floats((long) B * M * patchLength), embedded = f.floats((long) B * M * D);   // im2col [B·M, C·Q·Q], [B·M, D]
        Buffer x = f.floats((long) rows * D), hidden = f.floats((long) rows * D), normed = f.floats((long) rows * D);
        Buffer xz = f.floats((long) rows * 2 * E), y = f.floats((long) rows * E);   // [B·T, 2E]; y_fwd + y_bwd [B·T, E]
        backend.im2col(columns, pixels, B, config.channels(), config.imageSize(), config.patchSize(), config.stride(), patches.grid());
        backend.linear(embedded, D, columns, patchLength, B * M, patchProj, null);
        backend.assembleTokens(x, embedded, patchBias, cls, position, B, M, D, at);
        for (int i = 0; i < layers.length; i++) {
            Layer w = layers[i];
            backend.addRmsnorm(normed, D, x, D, i == 0 ? null : hidden, D, w.norm(), rows, D, eps);
            if (streams != null) streams[i] = backend.read(x, T * D);
            if (hiddenStates) trace.recordHiddenState(i == 0 ? "embeddings" : "layer " + (i - 1), T, () -> backend.read(x, T * D));
            backend.linear(xz, 2 * E, normed, D, rows, w.inProj(), null);
            w.forward().run(new SsmBranch.Run(f, null, null, trace, i, TraceRecorder.Direction.FORWARD), y, xz, B, T, false, false);
            w.backward().run(new SsmBranch.Run(f, null, null, trace, i, TraceRecorder.Direction.BACKWARD), y, xz, B, T, true, true);
            backend.linear(hidden, D, y, E, rows, w.outProj(), null, config.divideOut() ? 0.5f : 1f);
        }
        boolean summed = streams != null || hiddenStates;                 // the last add over every token
        if (summed) backend.add(x, hidden, (long) rows * D);
        if (streams != null) streams[layers.length] = backend.read(x, T * D);
        if (hiddenStates) {
            backend.rmsnorm(normed, x, normF, T, D, eps);
            trace.recordHiddenState("layer " + (layers.length - 1) + " and norm_f", T, () -> backend.read(normed, T * D));
        }
        Buffer clsNormed = f.floats((long) B * D);                        // else the last add and RMSNorm_f on the cls rows only
        backend.addRmsnorm(clsNormed, D, x.at((long) at * D), T * D, summed ? null : hidden.at((long) at * D), T * D, normF, B, D, eps);
        backend.linear(logits, config.numClasses(), clsNormed, D, B, head, headBias);
    }

    private float[] clsRow(float[] stream) {
        int D = config.embedDim(), at = config.clsPosition();
        return Arrays.copyOfRange(stream, at * D, (at + 1) * D);
    }

    /**
     * Mamba-Attribution's gradients (DESIGN §7): after the forward pass, back-propagates logits[target] and
     * records, for each wanted layer, the gradient with respect to the residual stream entering it [T, D].
     * Layers are recomputed one at a time on the way back, so the reverse pass holds one layer's tensors.
     * On a GPU the reverse pass runs on this checkpoint's CPU view.
     */
    @Override
    public float[] classifyWithGradients(float[] pixels, int target, TraceRecorder trace) {
        if (backend.isGpu()) {
            synchronized (this) {
                if (reverse == null) reverse = new VimModel(dir, config, checkpoint, CpuBackend.INSTANCE);
            }
            return reverse.classifyWithGradients(pixels, target, trace);
        }
        int T = config.tokens(), D = config.embedDim(), E = config.innerSize();
        float[][] streams = new float[layers.length + 1][];
        float[] logits = forward(new float[][]{pixels}, trace, streams)[0];
        int k = ImageClassifier.checkTarget(target, logits);
        Tensor headWeight = CpuBackend.tensor(head);
        float[] normWeight = array(normF);

        float[] dClsOut = new float[D];                                    // ∂logit/∂RMSNorm_f(cls) = head row k
        for (int j = 0; j < D; j++) dClsOut[j] = headWeight.getFloat((long) k * D + j);
        float[] grad = new float[T * D];                                   // ∂logit/∂stream, [T, D]
        float[] dCls = new float[D];
        Backward.rmsnorm(dCls, dClsOut, clsRow(streams[layers.length]), normWeight, config.eps(), 1, D);
        System.arraycopy(dCls, 0, grad, config.clsPosition() * D, D);

        float[] normed = new float[T * D], dNormed = new float[T * D], dStream = new float[T * D];
        for (int i = layers.length - 1; i >= 0; i--) {                     // stream_{i+1} = stream_i + mixer(norm(stream_i))
            Layer w = layers[i];
            Elementwise.rmsnorm(normed, streams[i], array(w.norm()), config.eps(), T, D);
            float[] xz = new float[T * 2 * E];
            MatMul.matmul(xz, 0, 2 * E, normed, 0, D, T, CpuBackend.tensor(w.inProj()), null);
            float[] dy = new float[T * E];                                 // through out_proj (and the div2 halving)
            Backward.linear(dy, grad, T, CpuBackend.tensor(w.outProj()));
            if (config.divideOut()) for (int j = 0; j < dy.length; j++) dy[j] *= 0.5f;
            float[] dxz = w.forward().backward(xz, T, dy);
            float[] dxzBack = Matrices.flipRows(w.backward().backward(Matrices.flipRows(xz, T, 2 * E), T, Matrices.flipRows(dy, T, E)), T, 2 * E);
            Elementwise.addInPlace(dxz, dxzBack, dxz.length);
            Backward.linear(dNormed, dxz, T, CpuBackend.tensor(w.inProj()));
            Backward.rmsnorm(dStream, dNormed, streams[i], array(w.norm()), config.eps(), T, D);
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

    @Override
    public void close() {
        backend.closeWith(checkpoint::close);
    }

    @Override
    public String toString() {
        return "Vision Mamba " + Arrays.asList(config.depth() + " layers", "D=" + config.embedDim(), "E=" + config.innerSize(),
                "N=" + config.stateSize(), config.numClasses() + " classes") + (backend.isGpu() ? " on " + backend : "") + " from " + dir;
    }
}
