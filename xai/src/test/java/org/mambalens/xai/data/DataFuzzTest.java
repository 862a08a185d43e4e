package org.mambalens.xai.data;

import com.code_intelligence.jazzer.junit.FuzzTest;
import org.mambalens.engine.Fixtures;
import org.mambalens.engine.model.ImageClassifier;
import org.mambalens.engine.model.Models;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

import static org.mambalens.engine.fuzz.Fuzzing.file;
import static org.mambalens.engine.fuzz.Fuzzing.loadsOrRefusesInOneLine;

/** The data readers under Jazzer (see EngineLoadersFuzzTest): IDX, image files, labelled JSONL, preprocessor_config.json. */
class DataFuzzTest {
    @FuzzTest
    void idx(byte[] data) {
        Path f = file("fuzz-idx3-ubyte", data);
        loadsOrRefusesInOneLine(() -> Idx.read(f));
    }

    /** Any bytes as an image file, decoded and preprocessed for a 28 × 28 gray model. */
    @FuzzTest
    void image(byte[] data) {
        Path f = file("fuzz.png", data);
        loadsOrRefusesInOneLine(() -> new ImagePreprocessor(1, 28, 1 / 255f, new float[]{0.5f}, new float[]{0.5f}).fromFile(f));
    }

    @FuzzTest
    void jsonl(byte[] data) {
        Path f = file("fuzz.jsonl", data);
        loadsOrRefusesInOneLine(() -> LabelledTexts.read(f, 5));
    }

    private static ImageClassifier model;

    /** preprocessor_config.json beside the bundled ViT, used on one image. */
    @FuzzTest
    void preprocessorConfig(byte[] data) throws Exception {
        Path dir = org.mambalens.engine.fuzz.Fuzzing.directory("vit-fashion");
        Path bundled = Fixtures.repository().resolve("models/vit-fashion");
        if (model == null) {
            for (String name : new String[]{"config.json", "model.safetensors"}) Files.copy(bundled.resolve(name), dir.resolve(name), StandardCopyOption.REPLACE_EXISTING);
            model = Models.loadImageClassifier(dir);
        }
        Files.write(dir.resolve("preprocessor_config.json"), data);
        loadsOrRefusesInOneLine(() -> ImagePreprocessor.of(dir, model).fromGray(new int[28 * 28], 28, 28));
    }
}
