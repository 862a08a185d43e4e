package org.mambalens.engine.model.vim;

import org.mambalens.engine.cuda.CudaKernels;
import org.mambalens.engine.cuda.CudaKernels.ScanArgs;
import org.mambalens.engine.cuda.DeviceArena;
import org.mambalens.engine.cuda.DeviceBuffer;
import org.mambalens.engine.cuda.DeviceMatrix;
import org.mambalens.engine.cuda.Gpu;
import org.mambalens.engine.cuda.Precision;
import org.mambalens.engine.io.Checkpoint;
import org.mambalens.engine.io.ConfigFile;
import org.mambalens.engine.model.ImageClassifier;
import org.mambalens.engine.model.mamba.SsmBranch;
import org.mambalens.engine.tensor.Matrices;
import org.mambalens.engine.trace.MambaLayerTrace;
import org.mambalens.engine.trace.MixerTrace;
import org.mambalens.engine.trace.TraceRecorder;

import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.TreeMap;

/**
 * The Vision Mamba of {@link VimModel} on a CUDA GPU, a batch of images at a time: the same checkpoint
 * and equations (SPEC §5). The backward branch runs the conv and the scan from the end of the sequence
 * (no flipped copies), adding into the forward branch's output; out_proj halves the sum (div2). The
 * reverse pass (attribution) runs on the CPU twin of the same checkpoint.
 *
 * <p>Shapes: B images, T tokens (M patches + cls), D = embed_dim, E = inner channels, N = state size,
 * R = dt rank, K = conv taps, P = R + 2N, C·Q·Q = one flattened patch, G = patches per side.
 */
public final class VimCudaModel implements ImageClassifier {

    /** One direction's SSM parameters on the device; {@code host} keeps the small ones for traces. */
    private record Branch(DeviceBuffer convTaps, DeviceBuffer convBias, DeviceMatrix xProj, DeviceMatrix dtProj, DeviceBuffer dtBias,
                          DeviceBuffer a, DeviceBuffer d, SsmBranch host) {
        static Branch upload(DeviceArena arena, SsmBranch b, Precision precision) {
            return new Branch(arena.upload(b.convTaps()), arena.upload(b.convBias()), DeviceMatrix.upload(arena, b.xProj(), b.xProj().dim(0), b.channels(), precision),
                    DeviceMatrix.upload(arena, b.dtProj(), b.channels(), b.rank(), precision), arena.upload(b.dtBias()), arena.upload(b.a()), arena.upload(b.d()), b);
        }
    }

    private record Layer(DeviceBuffer norm,      // [D]
                         DeviceMatrix inProj,    // [2E, D]
                         Branch forward, Branch backward,
                         DeviceMatrix outProj) { // [D, E]
    }

    /** Activations for up to {@code capacity} images. */
    private static final class Scratch {
        final MemorySegment pixelsStaging;   // page-locked [B, C, S, S]
        final DeviceBuffer pixels, columns, patches, x, hidden, normed, xz, u, dbc, dt, y, yBackward, convOut, delta, clsNormed, logits;

        Scratch(DeviceArena arena, VimConfig c, int capacity, int patchLength) {
            int T = c.tokens(), M = T - 1, D = c.embedDim(), E = c.innerSize(), P = c.dtRank() + 2 * c.stateSize();
            long rows = (long) capacity * T;
            pixelsStaging = arena.pinnedFloats((long) capacity * c.channels() * c.imageSize() * c.imageSize());
            pixels = arena.floats((long) capacity * c.channels() * c.imageSize() * c.imageSize());  // [B, C, S, S]
            columns = arena.floats((long) capacity * M * patchLength);   // im2col [B·M, C·Q·Q]
            patches = arena.floats((long) capacity * M * D);             // [B·M, D]
            x = arena.floats(rows * D);                                  // residual stream [B·T, D]
            hidden = arena.floats(rows * D);
            normed = arena.floats(rows * D);
            xz = arena.floats(rows * 2 * E);                             // [B·T, 2E]
            u = arena.floats(rows * E);
            dbc = arena.floats(rows * P);
            dt = arena.floats(rows * E);
            y = arena.floats(rows * E);                                  // y_fwd + y_bwd [B·T, E]
            yBackward = arena.floats(rows * E);                          // y_bwd alone, when traced
            convOut = arena.floats(rows * E);
            delta = arena.floats(rows * E);
            clsNormed = arena.floats((long) capacity * D);               // RMSNorm_f(cls) [B, D]
            logits = arena.floats((long) capacity * c.numClasses());     // [B, K]
        }
    }

    private final Path dir;
    private final VimConfig config;
    private final Gpu gpu;
    private final CudaKernels kernels;
    private final DeviceArena weights, work;
    private final DeviceMatrix patchProj;   // [D, C·Q·Q]
    private final DeviceBuffer patchBias, cls, position, normF, headBias;   // [D], [D], [T, D], [D], [K]
    private final DeviceMatrix head;        // [K, D]
    private final Layer[] layers;
    private final int patchLength, grid;
    private final TreeMap<Integer, Scratch> scratch = new TreeMap<>();
    private VimModel cpuTwin;

    private VimCudaModel(Path dir, VimConfig c, Checkpoint ck, Gpu gpu, Precision precision) {
        this.dir = dir;
        this.config = c;
        this.gpu = gpu;
        this.weights = gpu.newArena();
        this.work = gpu.newArena();
        this.kernels = new CudaKernels(gpu, work);
        int D = c.embedDim(), Q = c.patchSize(), C = c.channels(), E = c.innerSize(), N = c.stateSize();
        patchLength = C * Q * Q;
        grid = (c.imageSize() - Q) / c.stride() + 1;
        patchProj = DeviceMatrix.upload(weights, ck.tensor("patch_embed.proj.weight", D, C, Q, Q), D, patchLength, precision);
        patchBias = weights.upload(ck.tensor("patch_embed.proj.bias", D).toFloatArray());
        cls = weights.upload(ck.tensor("cls_token", 1, 1, D).toFloatArray());
        position = weights.upload(ck.tensor("pos_embed", 1, c.tokens(), D).toFloatArray());
        layers = new Layer[c.depth()];
        for (int i = 0; i < layers.length; i++) {
            String p = "layers." + i + ".mixer.";
            layers[i] = new Layer(weights.upload(ck.tensor("layers." + i + ".norm.weight", D).toFloatArray()),
                    DeviceMatrix.upload(weights, ck.tensor(p + "in_proj.weight", 2L * E, D), 2 * E, D, precision),
                    Branch.upload(weights, SsmBranch.load(ck, p, "", "A_log", true, E, N, c.dtRank(), c.convKernel()), precision),
                    Branch.upload(weights, SsmBranch.load(ck, p, "_b", "A_b_log", true, E, N, c.dtRank(), c.convKernel()), precision),
                    DeviceMatrix.upload(weights, ck.tensor(p + "out_proj.weight", D, E), D, E, precision));
        }
        normF = weights.upload(ck.tensor("norm_f.weight", D).toFloatArray());
        head = DeviceMatrix.upload(weights, ck.tensor("head.weight", c.numClasses(), D), c.numClasses(), D, precision);
        headBias = weights.upload(ck.tensor("head.bias", c.numClasses()).toFloatArray());
        gpu.synchronize();
    }

    /** Loads the checkpoint onto {@code gpu}, which the model then owns (and closes). */
    public static VimCudaModel load(Path dir, Gpu gpu, Precision precision) {
        VimConfig config = VimConfig.from(ConfigFile.in(dir));
        return gpu.load(dir, ck -> new VimCudaModel(dir, config, ck, gpu, precision));
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
    public int imageSize() {
        return config.imageSize();
    }

    @Override
    public int clsPosition() {
        return config.clsPosition();
    }

    @Override
    public boolean onGpu() {
        return true;
    }

    @Override
    public int layers() {
        return config.depth();
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
        int C = config.channels(), S = config.imageSize(), B = images.length, K = config.numClasses();
        for (float[] image : images) ImageClassifier.checkPixels(image, C, S);
        gpu.bind();
        Scratch s = scratch(B);
        if (DeviceArena.POISON) work.poison();
        s.pixels.uploadAll(images, s.pixelsStaging);
        launches(s, B, trace);
        return Matrices.rows(s.logits.download(0, B * K), B, K);
    }

    private Scratch scratch(int images) {
        var fit = scratch.ceilingEntry(images);
        if (fit != null) return fit.getValue();
        Scratch s = new Scratch(work, config, images, patchLength);
        scratch.put(images, s);
        return s;
    }

    private void launches(Scratch s, int B, TraceRecorder trace) {
        int T = config.tokens(), M = T - 1, D = config.embedDim(), E = config.innerSize(), N = config.stateSize(), R = config.dtRank(),
                K = config.convKernel(), P = R + 2 * N, at = config.clsPosition();
        float eps = config.eps();
        kernels.im2col(s.columns.address(), s.pixels.address(), B, config.channels(), config.imageSize(), config.patchSize(), config.stride(), grid);
        kernels.linear(s.patches.address(), D, s.columns.address(), patchLength, B * M, patchProj);
        kernels.assembleTokens(s.x.address(), s.patches.address(), patchBias.address(), cls.address(), position.address(), B, M, D, at);
        for (int i = 0; i < layers.length; i++) {                          // residual += hidden; hidden = BiMamba(RMSNorm(residual))
            Layer w = layers[i];
            kernels.addRmsnorm(s.normed.address(), D, s.x.address(), D, i == 0 ? 0 : s.hidden.address(), D, w.norm().address(), B * T, D, eps);
            kernels.linear(s.xz.address(), 2 * E, s.normed.address(), D, B * T, w.inProj());
            branch(s, w.forward(), B, false, trace, i);
            branch(s, w.backward(), B, true, trace, i);
            kernels.linear(s.hidden.address(), D, s.y.address(), E, B * T, w.outProj(), config.divideOut() ? 0.5f : 1f, 0f);
        }
        long cls = (long) at * D;                                          // the last add and RMSNorm_f on the cls rows only
        kernels.addRmsnorm(s.clsNormed.address(), D, s.x.at(cls), (long) T * D, s.hidden.at(cls), (long) T * D, normF.address(), B, D, eps);
        kernels.linear(s.logits.address(), config.numClasses(), s.clsNormed.address(), D, B, head);
        kernels.biasActivation(s.logits.address(), headBias.address(), B, config.numClasses(), false);
    }

    /** One scan direction over the batch: conv, x_proj, dt_proj, scan; the backward one adds into y. */
    private void branch(Scratch s, Branch w, int B, boolean reverse, TraceRecorder trace, int layer) {
        int T = config.tokens(), E = config.innerSize(), N = config.stateSize(), R = config.dtRank(), K = config.convKernel(), P = R + 2 * N;
        boolean traced = trace != null && trace.wants(layer);
        kernels.causalConvSilu(s.u.address(), traced ? s.convOut.address() : 0, s.xz.address(), 2 * E, w.convTaps().address(),
                w.convBias().address(), 0, B, T, E, K, reverse);
        kernels.linear(s.dbc.address(), P, s.u.address(), E, B * T, w.xProj());
        kernels.linear(s.dt.address(), E, s.dbc.address(), P, B * T, w.dtProj());
        DeviceBuffer out = reverse && traced ? s.yBackward : s.y;          // traced: keep the backward branch's own output
        kernels.selectiveScan(new ScanArgs(out.address(), E, s.u.address(), E, s.dt.address(), E, w.dtBias().address(), s.dbc.at(R), P,
                s.xz.at(E), 2 * E, w.a().address(), w.d().address(), 0, traced ? s.delta.address() : 0, 0, 0, 0, K),
                B, T, E, N, reverse, reverse && !traced);
        if (!traced) return;
        record(s, w.host(), reverse, trace, layer, out);
        if (reverse) kernels.addBiasResidual(s.y.address(), s.yBackward.address(), 0, T, E);
    }

    /** Downloads one direction's tensors (image 0); the backward direction's in its own, reversed token order (SPEC §5). */
    private void record(Scratch s, SsmBranch host, boolean reverse, TraceRecorder trace, int layer, DeviceBuffer y) {
        int T = config.tokens(), E = config.innerSize(), N = config.stateSize(), R = config.dtRank(), P = R + 2 * N;
        float[] xz = order(s.xz.download(0, T * 2 * E), 2 * E, reverse), dbc = order(s.dbc.download(0, T * P), P, reverse);
        float[] delta = order(s.delta.download(0, T * E), E, reverse), conv = order(s.convOut.download(0, T * E), E, reverse);
        float[] u = order(s.u.download(0, T * E), E, reverse), out = order(y.download(0, T * E), E, reverse);
        trace.record(layer, () -> MambaLayerTrace.of(reverse ? TraceRecorder.Direction.BACKWARD : TraceRecorder.Direction.FORWARD, new MixerTrace(T, E, N,
                delta, Matrices.columns(dbc, T, P, R, N), Matrices.columns(dbc, T, P, R + N, N), conv, u, Matrices.columns(xz, T, 2 * E, E, E),
                Matrices.columns(xz, T, 2 * E, 0, E), out, host.a(), host.d(), host.convTaps(), host.convBias())));
    }

    private static float[] order(float[] m, int cols, boolean reverse) {
        return reverse ? VimModel.flipRows(m, m.length / cols, cols) : m;
    }

    /** Attribution's reverse pass runs on the CPU twin of this checkpoint, loaded on first use. */
    @Override
    public synchronized float[] classifyWithGradients(float[] pixels, int target, TraceRecorder trace) {
        if (cpuTwin == null) cpuTwin = VimModel.load(dir);
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
