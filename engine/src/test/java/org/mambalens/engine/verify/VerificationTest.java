package org.mambalens.engine.verify;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;
import org.mambalens.engine.Fixtures;
import org.mambalens.engine.backend.Precision;
import org.mambalens.engine.cuda.GpuRequired;
import org.mambalens.engine.io.DType;
import org.mambalens.engine.io.ReferenceDump;
import org.mambalens.engine.io.SafetensorsFile;
import org.mambalens.engine.io.SafetensorsWriter;
import org.mambalens.engine.io.TensorInfo;
import org.mambalens.engine.model.Device;
import org.mambalens.engine.tensor.Tensor;

import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The reference dumps transformers made of every golden and bundled model (weights-tools/reference/reference_dumps.py,
 * on the GPU machine) verify within 1e-4, hidden state by hidden state; the same checkpoint with one weight of layer 1
 * scaled fails, first at that layer's output; the dump's other failures are one line naming the tensor.
 */
public class VerificationTest {
    static final String[] FIXTURES = {"mamba/tied_f32", "mamba/untied_bf16", "mamba/conv3_rank_given", "mamba/bias_untied_f16",
            "mamba2/mamba2_f32", "mamba2/mamba2_groups_bf16", "rwkv/rwkv_f32", "rwkv/rwkv_bf16", "griffin/griffin_f32", "griffin/griffin_bf16",
            "gptneox/neox_parallel_f32", "gptneox/neox_sequential_bf16", "classifiers/mamba_cls_f32", "classifiers/mamba_cls_bf16",
            "classifiers/neox_cls_parallel_f32", "classifiers/neox_cls_sequential_bf16", "vit/vit_small", "vit/vit_gray_odd",
            "vim/vim_small", "vim/vim_gray_cls0", "trained/mamba-fortunes", "trained/mamba-fortunes-topics", "trained/gptneox-fortunes",
            "trained/gptneox-fortunes-topics", "trained/vit-fashion", "trained/vim-fashion"};

    /**
     * A layer-1 output projection (its branch's last matrix, so that scaling it moves the residual stream) in every
     * family's key layout: backbone.layers.1.mixer.out_proj, rwkv.blocks.1.attention.output, model.layers.1.mlp_block.down_proj,
     * gpt_neox.layers.1.attention.dense, vit.encoder.layer.1.output.dense, layers.1.mixer.out_proj.
     */
    private static final Pattern LAYER_1_OUTPUT = Pattern.compile("(^|\\.)(layers|blocks|layer)\\.1\\..*\\.(out_proj|dense|output|down_proj)\\.weight$");

    static Stream<Arguments> everyFixtureOnEveryDevice() {
        return Fixtures.onEveryDevice(FIXTURES);
    }

    static Path dump(String name) {
        return Fixtures.golden().resolve(name).resolve("reference.safetensors");
    }

    @ParameterizedTest
    @MethodSource("everyFixtureOnEveryDevice")
    void transformersDumpsVerifyWithin1e4(Device device, String name) {
        if (device == Device.CUDA) GpuRequired.check();
        Verification.Report report = Verification.run(Fixtures.modelDir(name), ReferenceDump.read(dump(name)), device, Precision.F32, 1e-4);
        report.lines().forEach(line -> System.out.println(name + " " + device + ": " + line));
        assertThat(report.skipped()).isEmpty();
        assertThat(report.rows()).hasSizeGreaterThanOrEqualTo(4);                  // two layers at least: hidden states 0…n and logits
        assertThat(report.rows().getLast().name()).isEqualTo(Verification.LOGITS);
        assertThat(report.firstFailure()).isEmpty();
    }

    /** One family each: a layer-1 output projection scaled by 1.05 leaves every earlier tensor exact and fails first at layer 1's output. */
    @ParameterizedTest
    @ValueSource(strings = {"mamba/tied_f32", "mamba2/mamba2_f32", "rwkv/rwkv_f32", "griffin/griffin_f32", "gptneox/neox_sequential_bf16",
            "classifiers/mamba_cls_f32", "classifiers/neox_cls_parallel_f32", "vit/vit_gray_odd", "vim/vim_gray_cls0"})
    void aPerturbedLayerFailsAndIsNamed(String name, @TempDir Path tmp) throws IOException {
        Path model = perturbedCopy(Fixtures.modelDir(name), tmp);
        Verification.Report report = Verification.run(model, ReferenceDump.read(dump(name)), Device.CPU, Precision.F32, 1e-4);
        report.lines().forEach(line -> System.out.println(name + " perturbed: " + line));
        Verification.Row failed = report.firstFailure().orElseThrow();
        assertThat(failed.source()).startsWith("layer 1");
        assertThat(failed.name()).startsWith("hidden_states.");
        assertThat(report.rows().subList(0, report.rows().indexOf(failed))).isNotEmpty().allMatch(Verification.Row::within);
        assertThat(report.lines().getLast()).startsWith("FAILED: " + failed.name() + " (layer 1");
    }

    /** transformers computing in bfloat16 is further from the engine's F32 than 1e-4, and within BF16's bound. */
    @Test
    void aBf16ReferenceVerifiesWithinTheBf16Bound() {
        ReferenceDump bf16 = ReferenceDump.read(Fixtures.golden().resolve("mamba/untied_bf16/reference_bf16.safetensors"));
        Path model = Fixtures.modelDir("mamba/untied_bf16");
        assertThat(Verification.run(model, bf16, Device.CPU, Precision.F32, 1e-4).ok()).isFalse();
        Verification.Report report = Verification.run(model, bf16, Device.CPU, Precision.F32, 3e-2);
        report.lines().forEach(line -> System.out.println("untied_bf16 bf16: " + line));
        assertThat(report.ok()).isTrue();
    }

    @Test
    void tensorsAbsentFromTheDumpAreSkippedWithANote(@TempDir Path tmp) {
        Path partial = rewrite(dump("mamba/tied_f32"), tmp.resolve("partial.safetensors"), Map.of("hidden_states.1", "", "hidden_states.2", ""));
        Verification.Report report = Verification.run(Fixtures.modelDir("mamba/tied_f32"), ReferenceDump.read(partial), Device.CPU, Precision.F32, 1e-4);
        assertThat(report.rows()).extracting(Verification.Row::name).containsExactly("hidden_states.0", "logits");
        assertThat(report.skipped()).containsExactly("hidden_states.1 (layer 1): absent from the dump", "hidden_states.2 (norm_f): absent from the dump");
        assertThat(report.ok()).isTrue();
        assertThat(report.toJson()).contains("\"ok\" : true", "\"first_failure\" : null", "hidden_states.1 (layer 1): absent from the dump");
    }

    @Test
    void aShapeMismatchOrAForeignTensorIsOneLineNamingIt(@TempDir Path tmp) {
        Path model = Fixtures.modelDir("mamba/tied_f32");
        Path otherModel = dump("mamba/conv3_rank_given");                    // D = 32 where tied_f32 has 64
        assertThatThrownBy(() -> Verification.run(model, ReferenceDump.read(otherModel), Device.CPU, Precision.F32, 1e-4))
                .hasMessageContaining("hidden_states.0 is [").hasMessageContaining("in the dump but [").hasMessageNotContaining("\n");
        Path foreign = rewrite(dump("mamba/tied_f32"), tmp.resolve("foreign.safetensors"), Map.of("hidden_states.2", "hidden_states.7"));
        assertThatThrownBy(() -> Verification.run(model, ReferenceDump.read(foreign), Device.CPU, Precision.F32, 1e-4))
                .hasMessageContaining("hidden_states.7 is not an output of this model (it computes hidden_states.0 … hidden_states.2 and logits)");
        assertThatThrownBy(() -> Verification.run(Fixtures.modelDir("vit/vit_small"), ReferenceDump.read(dump("mamba/tied_f32")), Device.CPU, Precision.F32, 1e-4))
                .hasMessageContaining("holds input_ids, but").hasMessageContaining("is an image classifier");
    }

    /** A copy of the model whose first layer-1 output projection is scaled by 1.05 (written F32). */
    public static Path perturbedCopy(Path dir, Path tmp) throws IOException {
        Path out = Files.createDirectories(tmp.resolve("perturbed"));
        try (Stream<Path> files = Files.list(dir)) {
            for (Path f : files.filter(f -> f.getFileName().toString().endsWith(".json")).toList()) Files.copy(f, out.resolve(f.getFileName()));
        }
        SafetensorsWriter w = new SafetensorsWriter();
        String chosen = null;
        try (SafetensorsFile st = SafetensorsFile.open(dir.resolve("model.safetensors"))) {
            for (TensorInfo t : st.tensors().values()) {
                if (chosen == null && LAYER_1_OUTPUT.matcher(t.name()).find()) {
                    chosen = t.name();
                    float[] v = new Tensor(t.name(), t.dtype(), t.shape(), st.bytes(t)).toFloatArray();
                    for (int i = 0; i < v.length; i++) v[i] *= 1.05f;
                    w.addFloat32(t.name(), v, t.shape());
                } else {
                    w.add(t.name(), t.dtype(), t.shape(), st.bytes(t).toArray(ValueLayout.JAVA_BYTE));
                }
            }
        }
        assertThat(chosen).as("a layer-1 output projection in " + dir).isNotNull();
        w.write(out.resolve("model.safetensors"));
        return out;
    }

    /** A copy of a dump with tensors renamed (to "": dropped). */
    static Path rewrite(Path dump, Path out, Map<String, String> renames) {
        SafetensorsWriter w = new SafetensorsWriter();
        try (SafetensorsFile st = SafetensorsFile.open(dump)) {
            st.metadata().forEach(w::metadata);
            for (TensorInfo t : st.tensors().values()) {
                String name = renames.getOrDefault(t.name(), t.name());
                if (!name.isEmpty()) w.add(name, t.dtype(), t.shape(), st.bytes(t).toArray(ValueLayout.JAVA_BYTE));
            }
        }
        w.write(out);
        return out;
    }
}
