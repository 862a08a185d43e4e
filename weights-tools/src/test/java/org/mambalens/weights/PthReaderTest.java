package org.mambalens.weights;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.mambalens.engine.io.Checkpoint;
import org.mambalens.engine.io.CheckpointException;
import org.mambalens.engine.model.ImageClassifier;
import org.mambalens.engine.model.Models;
import org.mambalens.engine.tensor.Tensor;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The .pth reader on files written by torch.save (weights-tools/reference/make_pth_fixtures.py, run on
 * the GPU machine) and on hostile files: every tensor equal to what safetensors.torch saved from the
 * same tensors; every hostile file refused by name, with nothing run.
 */
class PthReaderTest {
    static final Path DIR = Path.of("src/test/resources/pth");

    @TempDir
    Path tmp;

    @ParameterizedTest
    @CsvSource({"plain.pth, expected_plain.safetensors", "nested.pth, expected_plain.safetensors",
            "vim_tiny.pth, expected_vim_tiny.safetensors"})
    void tensorsEqualWhatTorchSaved(String pth, String expected) {
        Map<String, PthReader.TensorData> read = PthReader.read(DIR.resolve(pth));
        try (Checkpoint want = Checkpoint.open(DIR.resolve(expected))) {
            assertThat(read.keySet()).containsExactlyInAnyOrderElementsOf(want.names());
            for (String name : want.names()) {
                Tensor t = want.tensor(name);
                PthReader.TensorData got = read.get(name);
                assertThat(got.dtype()).as(name).isEqualTo(t.dtype());
                assertThat(got.shape()).as(name).containsExactly(t.shape());
                assertThat(got.bytes()).as(name).containsExactly(t.data().toArray(java.lang.foreign.ValueLayout.JAVA_BYTE));
            }
        }
    }

    @Test
    void convertWritesSafetensorsAndInfersTheVisionMambaConfig() throws Exception {
        Convert.Result r = Convert.pthToSafetensors(DIR.resolve("vim_tiny.pth"), tmp);
        assertThat(r.config()).isPresent();
        var config = new com.fasterxml.jackson.databind.ObjectMapper().readTree(tmp.resolve("config.json").toFile());
        assertThat(config.get("model_type").asText()).isEqualTo("vim");
        assertThat(config.get("embed_dim").asInt()).isEqualTo(16);
        assertThat(config.get("depth").asInt()).isEqualTo(2);
        assertThat(config.get("d_state").asInt()).isEqualTo(4);
        assertThat(config.get("patch_size").asInt()).isEqualTo(4);
        assertThat(config.get("img_size").asInt()).isEqualTo(16);
        assertThat(config.get("num_classes").asInt()).isEqualTo(10);
        try (Checkpoint c = Checkpoint.open(tmp)) {
            assertThat(c.names()).contains("layers.1.mixer.A_b_log", "head.weight");
        }
        try (ImageClassifier vim = Models.loadImageClassifier(tmp)) {            // the converted model runs as is
            assertThat(vim.classify(new float[3 * 16 * 16], null)).hasSize(10).doesNotContain(Float.NaN);
        }
        Convert.Result plain = Convert.pthToSafetensors(DIR.resolve("plain.pth"), tmp.resolve("plain"));
        assertThat(plain.config()).isEmpty();
        assertThat(plain.tensors()).isEqualTo(8);
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
            "os_system.pth     | refusing to load global posix.system",
            "eval_global.pth   | refusing to load global builtins.eval",
            "deep_nesting.pth  | no tensors found",
            "huge_string.pth   | runs past the data",
            "huge_storage.pth  | storage of 1000000000000000 elements"})
    void hostileFilesAreRefusedAndNothingRuns(String file, String why) throws Exception {
        Path marker = Path.of("/tmp/mambalens-pwned");
        Files.deleteIfExists(marker);
        assertThatThrownBy(() -> PthReader.read(DIR.resolve(file)))
                .isInstanceOf(CheckpointException.class)
                .hasMessageContaining(file)
                .hasMessageContaining(why.strip());
        assertThat(marker).doesNotExist();
    }

    @Test
    void notAZipIsAClearError() throws Exception {
        Path junk = tmp.resolve("junk.pth");
        Files.writeString(junk, "not a zip");
        assertThatThrownBy(() -> PthReader.read(junk)).hasMessageContaining("junk.pth").hasMessageContaining("not a torch.save zip checkpoint");
    }
}
