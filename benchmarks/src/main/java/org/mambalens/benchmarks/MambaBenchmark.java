package org.mambalens.benchmarks;

import org.mambalens.engine.model.LanguageModel;
import org.mambalens.engine.model.mamba.MambaModel;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.nio.file.Path;
import java.util.Random;
import java.util.concurrent.TimeUnit;

/**
 * Whole-model speed on a checkpoint directory (default: the mamba-130m config with random weights that
 * `python3 ../shared/bench/mamba_floor.py --write /tmp/mamba130m` writes). Decode: one token with the
 * state carried (ms/token). Prefill: a 512-token prompt, the logits of its last position (ms/prompt).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 3)
@Measurement(iterations = 5, time = 3)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
public class MambaBenchmark {
    @Param({"/tmp/mamba130m"})
    String checkpoint;
    @Param({"512"})
    int promptLength;

    LanguageModel model;
    LanguageModel.State state;
    int[] prompt;
    int token;

    @Setup(Level.Trial)
    public void load() {
        model = MambaModel.load(Path.of(checkpoint));
        Random r = new Random(3);
        prompt = new int[promptLength];
        for (int i = 0; i < prompt.length; i++) prompt[i] = r.nextInt(model.vocabSize());
        state = model.newState();
        model.prefill(new int[]{1, 2, 3}, state);
    }

    @TearDown(Level.Trial)
    public void close() {
        model.close();
    }

    @Benchmark
    public float[] decode() {
        token = (token * 31 + 7) % model.vocabSize();
        return model.step(token, state);
    }

    @Benchmark
    public float[] prefill() {
        return model.prefill(prompt, model.newState());
    }
}
