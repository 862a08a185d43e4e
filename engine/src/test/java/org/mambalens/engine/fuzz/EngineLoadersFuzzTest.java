package org.mambalens.engine.fuzz;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import org.mambalens.engine.Fixtures;
import org.mambalens.engine.io.Checkpoint;
import org.mambalens.engine.io.Npy;
import org.mambalens.engine.io.SafetensorsFile;
import org.mambalens.engine.model.Families;
import org.mambalens.engine.model.ImageClassifier;
import org.mambalens.engine.model.LanguageModel;
import org.mambalens.engine.model.ModelFamily;
import org.mambalens.engine.model.Models;
import org.mambalens.engine.text.BpeTokenizer;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;

import static org.mambalens.engine.fuzz.Fuzzing.file;
import static org.mambalens.engine.fuzz.Fuzzing.loadsOrRefusesInOneLine;

/**
 * The engine's loaders under Jazzer (README, "Fuzzing"): in {@code mvn test} each target runs its committed
 * seeds (src/test/resources/.../EngineLoadersFuzzTestInputs/TARGET) once; scripts/fuzz.sh runs one for as long
 * as it is given. Every input must load or be refused in one line naming the file.
 */
class EngineLoadersFuzzTest {
    /** A whole safetensors file. */
    @FuzzTest
    void safetensorsFile(byte[] data) {
        Path f = file("fuzz.safetensors", data);
        loadsOrRefusesInOneLine(() -> {
            try (SafetensorsFile s = SafetensorsFile.open(f)) {
                s.tensors().values().forEach(s::bytes);
            }
        });
    }

    /** A safetensors header as JSON text, with a true length prefix and a data section behind it. */
    @FuzzTest
    void safetensorsHeader(FuzzedDataProvider data) {
        byte[] header = data.consumeString(4096).getBytes(StandardCharsets.UTF_8), body = data.consumeRemainingAsBytes();
        ByteBuffer file = ByteBuffer.allocate(8 + header.length + body.length).order(ByteOrder.LITTLE_ENDIAN);
        file.putLong(header.length).put(header).put(body);
        Path f = file("header.safetensors", file.array());
        loadsOrRefusesInOneLine(() -> {
            try (Checkpoint c = Checkpoint.open(f)) {
                for (String name : c.names()) c.tensor(name);
            }
        });
    }

    @FuzzTest
    void npy(byte[] data) {
        Path f = file("fuzz.npy", data);
        loadsOrRefusesInOneLine(() -> Npy.readFloat32(f));
    }

    /** tokenizer.json, then a text through it and back. */
    @FuzzTest
    void tokenizer(FuzzedDataProvider data) {
        String text = data.consumeString(64);
        Path f = file("tokenizer.json", data.consumeRemainingAsBytes());
        loadsOrRefusesInOneLine(() -> {
            BpeTokenizer tokenizer = BpeTokenizer.load(f);
            tokenizer.decode(tokenizer.encode(text));
        });
    }

    private static final List<String> FAMILIES = List.of("mamba/tied_f32", "gptneox/neox_parallel_f32", "mamba2/mamba2_f32", "rwkv/rwkv_f32",
            "griffin/griffin_f32", "vim/vim_small", "vit/vit_small", "classifiers/mamba_cls_f32");

    /** config.json of every family (the first byte picks which), beside that family's fixture weights, loaded and run on two tokens or one image. */
    @FuzzTest
    void config(FuzzedDataProvider data) throws Exception {
        String fixture = FAMILIES.get(data.consumeInt(0, FAMILIES.size() - 1));
        Path dir = Fuzzing.directory(fixture.replace('/', '_'));
        Path weights = dir.resolve(Checkpoint.SINGLE);
        if (!Files.exists(weights)) Files.copy(Fixtures.golden().resolve(fixture).resolve(Checkpoint.SINGLE), weights, StandardCopyOption.REPLACE_EXISTING);
        Files.write(dir.resolve("config.json"), data.consumeRemainingAsBytes());
        loadsOrRefusesInOneLine(() -> {
            ModelFamily family = Families.forDirectory(dir);
            if (family.kind() == ModelFamily.Kind.IMAGE) {
                try (ImageClassifier model = Models.loadImageClassifier(dir)) {
                    model.classify(new float[model.channels() * model.imageSize() * model.imageSize()], null);
                }
            } else {
                try (LanguageModel model = Models.loadLanguageModel(dir)) {
                    model.forward(new int[]{0, Math.min(1, model.vocabSize() - 1)}, null);
                }
            }
        });
    }
}
