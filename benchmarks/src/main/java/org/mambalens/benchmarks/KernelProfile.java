package org.mambalens.benchmarks;

import org.mambalens.engine.backend.Precision;
import org.mambalens.engine.cuda.Gpu;
import org.mambalens.engine.model.Device;
import org.mambalens.engine.model.LanguageModel;
import org.mambalens.engine.model.Models;
import java.nio.file.Path;
import java.util.Random;
import java.util.function.IntConsumer;

/**
 * A language model's prefill, or a few of its decode steps, on the GPU inside {@link Gpu#profiled}, so a profiler
 * started with profiling off (Nsight Compute's {@code --profile-from-start off}) times exactly those kernels.
 * Everything before stays outside: the model's upload, kernel compiles, a warm-up of the same work, and for decode the
 * state's first two steps (one launched, one that captures the graph, with any cache growth), so only replays are
 * profiled. {@code scripts/device-profile.sh} runs it under {@code ncu} and sums the times per kernel.
 * <pre>java -cp … org.mambalens.benchmarks.KernelProfile DIR prefill|decode|batch TOKENS [STEPS] [bf16]</pre>
 * prefill: one prefill of TOKENS random tokens; decode: STEPS greedy steps after a TOKENS-token prompt and two more;
 * batch: STEPS greedy steps of TOKENS sequences stepped together (each after an 8-token prompt of its own) and two more.
 */
public final class KernelProfile {
    private KernelProfile() {
    }

    public static void main(String[] args) {
        if (args.length < 3) throw new IllegalArgumentException("usage: KernelProfile DIR prefill|decode|batch TOKENS [STEPS] [bf16]");
        Path dir = Path.of(args[0]);
        String phase = args[1];
        if (!phase.equals("prefill") && !phase.equals("decode") && !phase.equals("batch")) {
            throw new IllegalArgumentException("phase must be prefill, decode or batch, not " + phase);
        }
        boolean decode = phase.equals("decode");
        int tokens = Integer.parseInt(args[2]), stepCount = args.length > 3 ? Integer.parseInt(args[3]) : 3;
        Precision precision = args.length > 4 && args[4].equals("bf16") ? Precision.BF16 : Precision.F32;
        try (LanguageModel lm = Models.loadLanguageModel(dir, Device.CUDA, precision)) {
            Random random = new Random(5);
            for (int round = 0; round < 2; round++) {                      // round 0 warms up: compiles, allocations
                if (phase.equals("batch")) {
                    LanguageModel.Batch batch = lm.newBatch(tokens);
                    for (int i = 0; i < tokens; i++) lm.prefill(random.ints(8, 0, lm.vocabSize()).toArray(), batch.sequence(i));
                    int[][] two = {new int[2 * tokens]};
                    IntConsumer batchSteps = count -> {
                        for (int step = 0; step < count; step++) {
                            int[] ids = new int[tokens];
                            for (int i = 0; i < tokens; i++) ids[i] = Math.max(0, two[0][2 * i]);
                            two[0] = lm.stepTopTwo(ids, batch);
                        }
                    };
                    batchSteps.accept(2);                                  // launched, then captured: outside, as for decode
                    if (round == 0) batchSteps.accept(stepCount);
                    else Gpu.profiled(() -> batchSteps.accept(stepCount));
                    continue;
                }
                int[] prompt = random.ints(tokens, 0, lm.vocabSize()).toArray();
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
            System.out.println("profiled " + switch (phase) {
                case "decode" -> stepCount + " replayed decode steps after " + tokens + " tokens";
                case "batch" -> stepCount + " replayed decode steps of " + tokens + " sequences together";
                default -> "a prefill of " + tokens + " tokens";
            } + ": " + lm);
        }
    }

    private static int argmax(float[] x) {
        int best = 0;
        for (int i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
        return best;
    }
}
