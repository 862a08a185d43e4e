package org.mambalens.engine.model;

import org.mambalens.engine.backend.Backend;
import org.mambalens.engine.backend.CpuBackend;
import org.mambalens.engine.backend.Precision;
import org.mambalens.engine.cuda.CudaBackend;
import org.mambalens.engine.cuda.Gpu;
import org.mambalens.engine.io.ConfigFile;
import org.mambalens.engine.model.ModelFamily.Capability;
import org.mambalens.engine.model.ModelFamily.Kind;
import org.mambalens.engine.model.ModelFamily.Loader;

import java.nio.file.Path;
import java.util.function.Function;

/** Loads a checkpoint directory with the family its config.json's {@code model_type} names ({@link Families}), on the CPU or a CUDA GPU. */
public final class Models {
    private Models() {
    }

    public static ImageClassifier loadImageClassifier(Path dir) {
        return loadImageClassifier(dir, Device.CPU, Precision.F32);
    }

    /** The classifier on {@code device}; {@code precision} is the GPU's GEMM precision (BF16 only with cuda or auto). */
    public static ImageClassifier loadImageClassifier(Path dir, Device device, Precision precision) {
        ModelFamily family = Families.forDirectory(dir);
        if (!(family.loader() instanceof Loader.Image loader)) throw notA(dir, family, Kind.IMAGE, "an image classifier");
        return onBackend(device.open(family, precision), precision, backend -> loader.load().apply(dir, backend));
    }

    /**
     * A model loaded onto the CPU backend ({@code gpu} null) or onto a new CUDA backend over {@code gpu},
     * which the model then owns; the backend is closed again if loading fails.
     */
    private static <T> T onBackend(Gpu gpu, Precision precision, Function<Backend, T> load) {
        if (gpu == null) return load.apply(CpuBackend.INSTANCE);
        CudaBackend backend = new CudaBackend(gpu, precision);
        try {
            return load.apply(backend);
        } catch (RuntimeException e) {
            backend.close();
            throw e;
        }
    }

    /** Whether this model_type names a language model family. */
    public static boolean isLanguageModel(String modelType) {
        return Families.all().stream().anyMatch(f -> f.modelType().equals(modelType) && f.kind() == Kind.LANGUAGE);
    }

    public static LanguageModel loadLanguageModel(Path dir) {
        return loadLanguageModel(dir, Device.CPU, Precision.F32);
    }

    /** A causal LM, or the model under a text classifier (its outputs are then the labels), as {@link #loadImageClassifier}. */
    public static LanguageModel loadLanguageModel(Path dir, Device device, Precision precision) {
        ModelFamily family = Families.forDirectory(dir);
        if (!(family.loader() instanceof Loader.Language loader)) throw notA(dir, family, Kind.LANGUAGE, "a language model");
        if (isTextClassifier(dir)) {
            if (!family.has(Capability.SEQUENCE_CLASSIFICATION)) {
                throw ConfigFile.in(dir).error("\"" + family.modelType() + "\" sequence classifiers are not supported (supported: " + textClassifiers() + ")");
            }
        }
        LanguageModel lm = onBackend(device.open(family, precision), precision, backend -> loader.load().apply(dir, backend));
        if (lm.eosTokenId() < 0 || lm.eosTokenId() >= lm.vocabSize()) {
            lm.close();
            throw ConfigFile.in(dir).error("\"eos_token_id\" " + lm.eosTokenId() + " is outside the vocabulary [0, " + lm.vocabSize() + ")");
        }
        return lm;
    }

    /** Whether config.json in {@code dir} describes a text classifier ({@code …ForSequenceClassification}). */
    public static boolean isTextClassifier(Path dir) {
        return SequenceClassification.from(ConfigFile.in(dir)) != null;
    }

    public static TextClassifier loadTextClassifier(Path dir, Device device, Precision precision) {
        ConfigFile config = ConfigFile.in(dir);
        SequenceClassification head = SequenceClassification.from(config);
        if (head == null) {
            throw config.error("not a text classifier: \"architectures\" names no …ForSequenceClassification (text classifiers: " + textClassifiers() + ")");
        }
        LanguageModel lm = loadLanguageModel(dir, device, precision);
        if (head.padTokenId() < 0 || head.padTokenId() >= lm.vocabSize()) {
            lm.close();
            throw config.error("\"pad_token_id\" " + head.padTokenId() + " is outside the vocabulary [0, " + lm.vocabSize() + ")");
        }
        return new TextClassifier(lm, head);
    }

    private static RuntimeException notA(Path dir, ModelFamily family, Kind kind, String what) {
        return ConfigFile.in(dir).error("model_type \"" + family.modelType() + "\" is not " + what + " (supported: "
                + Families.names(f -> f.kind() == kind) + ")");
    }

    private static String textClassifiers() {
        return Families.names(f -> f.has(Capability.SEQUENCE_CLASSIFICATION));
    }
}
