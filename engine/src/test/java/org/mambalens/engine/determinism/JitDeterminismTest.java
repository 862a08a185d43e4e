package org.mambalens.engine.determinism;

import org.junit.jupiter.api.Test;
import org.mambalens.engine.Fixtures;
import org.mambalens.engine.model.ImageClassifier;
import org.mambalens.engine.model.LanguageModel;
import org.mambalens.engine.model.Models;

import java.io.DataOutputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The same input gives bit-identical outputs whether the kernels run interpreted or as C1 code (the Vector API's
 * Java fallback, lane by lane) or compiled by C2 (vector instructions): a reduction or a transcendental whose
 * result depends on the compiler would make a run's numbers depend on how warm the JIT is. A second JVM limited to
 * C1 computes every family's outputs; this one computes them after enough repetitions for C2 to have compiled the
 * kernels; every bit must agree.
 */
class JitDeterminismTest {
    static final String[] LANGUAGE = {"mamba/tied_f32", "mamba2/mamba2_f32", "rwkv/rwkv_f32", "griffin/griffin_f32", "gptneox/neox_parallel_f32"};
    static final String[] IMAGE = {"vim/vim_small", "vit/vit_small"};

    /** Every fixture's outputs, in order: a language model's logits of its reference prompt, a classifier's of its first image. */
    static List<float[]> outputs() {
        List<float[]> out = new ArrayList<>();
        for (String name : LANGUAGE) {
            try (LanguageModel lm = Models.loadLanguageModel(Fixtures.golden().resolve(name))) {
                out.add(lm.forward(Fixtures.ints(Fixtures.json(Fixtures.golden().resolve(name).resolve("reference.json")).get("token_ids")), null));
            }
        }
        for (String name : IMAGE) {
            try (ImageClassifier model = Models.loadImageClassifier(Fixtures.golden().resolve(name))) {
                out.add(model.classify(Fixtures.images(name)[0], null));
            }
        }
        return out;
    }

    /** The probe run in the C1-only JVM: writes every output's float bits to args[0]. */
    public static void main(String[] args) throws IOException {
        try (DataOutputStream o = new DataOutputStream(Files.newOutputStream(Path.of(args[0])))) {
            for (float[] v : outputs()) {
                o.writeInt(v.length);
                for (float f : v) o.writeInt(Float.floatToRawIntBits(f));
            }
        }
    }

    @Test
    void outputsAreBitIdenticalUnderC1AndC2() throws Exception {
        Path file = Files.createTempFile("jit-determinism", ".bin");
        try {
            Process probe = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                    "--add-modules", "jdk.incubator.vector", "-XX:TieredStopAtLevel=1", "-cp", System.getProperty("java.class.path"),
                    JitDeterminismTest.class.getName(), file.toString()).inheritIO().start();
            assertThat(probe.waitFor(5, TimeUnit.MINUTES)).as("the C1 probe finished").isTrue();
            assertThat(probe.exitValue()).isZero();
            List<float[]> compiled = null;
            for (int i = 0; i < 30; i++) compiled = outputs();            // long enough for C2 to compile the kernels' loops
            List<String> differing = new ArrayList<>();
            try (var in = new java.io.DataInputStream(Files.newInputStream(file))) {
                for (int k = 0; k < compiled.size(); k++) {
                    float[] c2 = compiled.get(k);
                    assertThat(in.readInt()).isEqualTo(c2.length);
                    int n = 0;
                    for (float f : c2) if (in.readInt() != Float.floatToRawIntBits(f)) n++;
                    if (n > 0) differing.add((k < LANGUAGE.length ? LANGUAGE[k] : IMAGE[k - LANGUAGE.length]) + ": " + n + " of " + c2.length);
                }
            }
            assertThat(differing).as("outputs whose bits differ between C1 and C2").isEmpty();
        } finally {
            Files.deleteIfExists(file);
        }
    }
}
