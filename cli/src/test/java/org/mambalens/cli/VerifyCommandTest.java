package org.mambalens.cli;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.mambalens.engine.Fixtures;
import org.mambalens.engine.verify.VerificationTest;

import java.io.IOException;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;

/** ./mambalens verify: a row per tensor, the JSON report, exit 0 within the tolerance, 1 past it or on a bad dump. */
class VerifyCommandTest {
    @TempDir
    Path tmp;

    private static String dump(String fixture) {
        return Fixtures.golden().resolve(fixture).resolve("reference.safetensors").toString();
    }

    @Test
    void aCheckpointWithinTheToleranceExitsZeroAndWritesTheReport() {
        Path model = Fixtures.golden().resolve("griffin/griffin_f32"), out = tmp.resolve("report.json");
        CliTest.Result r = CliTest.run("verify", "--model", model.toString(), "--reference", dump("griffin/griffin_f32"), "--out", out.toString());
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out().lines().toList()).hasSize(7)                      // header, hidden_states.0…3, logits, verdict
                .anySatisfy(line -> assertThat(line).startsWith("hidden_states.0").contains("[40, 64]", "ok", "embeddings"))
                .anySatisfy(line -> assertThat(line).startsWith("logits").contains("[40, 300]", "ok"));
        assertThat(r.out().strip().lines().toList().getLast()).startsWith("OK: all 5 tensors within 1.0e-04");
        JsonNode report = Fixtures.json(out);
        assertThat(report.get("ok").asBoolean()).isTrue();
        assertThat(report.get("first_failure").isNull()).isTrue();
        assertThat(report.get("tensors")).hasSize(5);
        assertThat(report.get("tensors").get(3).get("source").asText()).isEqualTo("layer 2 and final_norm");
        assertThat(report.get("tensors").get(4).get("relative_error").asDouble()).isLessThan(1e-4);
    }

    @Test
    void aPerturbedLayerExitsOneNamingIt() throws IOException {
        Path model = VerificationTest.perturbedCopy(Fixtures.golden().resolve("rwkv/rwkv_f32"), tmp), out = tmp.resolve("report.json");
        CliTest.Result r = CliTest.run("verify", "--model", model.toString(), "--reference", dump("rwkv/rwkv_f32"), "--out", out.toString());
        assertThat(r.code()).isEqualTo(1);
        assertThat(r.out().strip().lines().toList().getLast()).startsWith("FAILED: hidden_states.1 (layer 1) first differs from the reference");
        JsonNode report = Fixtures.json(out);
        assertThat(report.get("ok").asBoolean()).isFalse();
        assertThat(report.get("first_failure").get("name").asText()).isEqualTo("hidden_states.1");
        assertThat(report.get("tensors").get(0).get("within_tolerance").asBoolean()).isTrue();
    }

    @Test
    void aDumpOfAnotherShapeIsOneLineNamingTheTensor() {
        CliTest.Result r = CliTest.run("verify", "--model", Fixtures.golden().resolve("mamba/tied_f32").toString(), "--reference", dump("mamba/conv3_rank_given"));
        assertThat(r.code()).isEqualTo(1);
        assertThat(r.err().strip()).contains("hidden_states.0 is [40, 32] in the dump but [40, 64] from the model").doesNotContain("\n");
        CliTest.Result missing = CliTest.run("verify", "--model", Fixtures.golden().resolve("mamba/tied_f32").toString(), "--reference", tmp.resolve("none.safetensors").toString());
        assertThat(missing.code()).isEqualTo(1);
        assertThat(missing.err().strip()).contains("none.safetensors: no such file").doesNotContain("\n");
        CliTest.Result infinite = CliTest.run("verify", "--model", Fixtures.golden().resolve("mamba/tied_f32").toString(), "--reference",
                dump("mamba/conv3_rank_given"), "--tolerance", "Infinity");
        assertThat(infinite.code()).isEqualTo(1);
        assertThat(infinite.err().strip()).contains("tolerance Infinity is not a finite number").doesNotContain("\n");
    }
}
