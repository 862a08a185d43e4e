package org.mambalens.benchmarks;

import org.mambalens.engine.backend.Precision;
import org.mambalens.engine.cuda.Gpu;
import org.mambalens.engine.model.Device;
import org.mambalens.engine.model.LanguageModel;
import org.mambalens.engine.model.Models;
import java.nio.file.Path;
import java.util.Random;

/**
 * A language model's prefill, or a few of its decode steps, on the GPU inside {@link Gpu#profiled}, so a profiler
 * started with profiling off (Nsight Compute's {@code --profile-from-start off}) times exactly those kernels.
 * Everything before stays outside: the model's upload, kernel compiles, a warm-up of the same work, and for decode the
 * state's first two steps (one launched, one that captures the graph, with any cache growth), so only replays are
 * profiled. {@code scripts/device-profile.sh} runs it under {@code ncu} and sums the times per kernel.
 * <pre>java -cp … org.mambalens.benchmarks.KernelProfile DIR prefill|decode TOKENS [STEPS] [bf16]</pre>
 * prefill: one prefill of TOKENS random tokens; decode: STEPS greedy steps after a TOKENS-token prompt and two more.
 */
public final class KernelProfile {
    private KernelProfile() {
    }

    public static void main(String[] args) {
        if (args.length < 3) throw new IllegalArgumentException("usage: KernelProfile DIR prefill|decode TOKENS [STEPS] [bf16]");
        Path dir = Path.of(args[0]);
        boolean decode = switch (args[1]) {
            case "prefill" -> false;
            case "decode" -> true;
            default -> throw new IllegalArgumentException("phase must be prefill or decode, not " + args[1]);
        };
        int tokens = Integer.parseInt(args[2]), stepCount = args.length > 3 ? Integer.parseInt(args[3]) : 3;
        Precision precision = args.length > 4 && args[4].equals("bf16") ? Precision.BF16 : Precision.F32;
        try (LanguageModel lm = Models.loadLanguageModel(dir, Device.CUDA, precision)) {
            int[] prompt = new Random(5).ints(tokens, 0, lm.vocabSize()).toArray();
            for (int round = 0; round < 2; round++) {                      // round 0 warms up: compiles, allocations
                var state = lm.newState();
                float[][] logits = {decode ? lm.prefill(prompt, state) : null};
                Runnable steps = () -> {
                    for (int i = 0; i < stepCount; i++) logits[0] = lm.step(argmax(logits[0]), state);
                };
                if (decode) {   // a state's first step runs as launched and its second captures the graph: both before
                    for (int i = 0; i < 2; i++) logits[0] = lm.step(argmax(logits[0]), state);   // (and any cache growth)
                }
                Runnable work = decode ? steps : () -> lm.prefill(prompt, state);
                if (round == 0) work.run();
                else Gpu.profiled(work);
            }
            System.out.println("profiled " + (decode ? stepCount + " replayed decode steps after " + tokens + " tokens" : "a prefill of " + tokens + " tokens")
                    + ": " + lm);
        }
    }

    private static int argmax(float[] x) {
        int best = 0;
        for (int i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
        return best;
    }
}
