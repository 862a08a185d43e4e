package org.mambalens.benchmarks;

import org.mambalens.engine.model.LanguageModel;
import org.mambalens.engine.model.Models;
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
 * Decoding one token after a prompt of {@code context} tokens, for any language model (Mamba, Mamba-2,
 * GPT-NeoX): each measurement iteration starts from a freshly prefilled state, so the context stays within
 * a few dozen tokens of {@code context} (a Transformer's step grows with its cache; a Mamba's does not).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 1, time = 1)
@Measurement(iterations = 3, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED", "-Xmx8g"})
public class DecodeBenchmark {
    @Param({"/tmp/mamba130m"})
    String checkpoint;
    @Param({"256"})
    int context;

    LanguageModel model;
    LanguageModel.State state;
    int token;

    @Setup(Level.Trial)
    public void load() {
        model = Models.loadLanguageModel(Path.of(checkpoint));
    }

    @Setup(Level.Iteration)
    public void prefill() {
        Random r = new Random(3);
        int[] prompt = new int[context];
        for (int i = 0; i < prompt.length; i++) prompt[i] = r.nextInt(model.vocabSize());
        state = model.newState();
        model.prefill(prompt, state);
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
}
