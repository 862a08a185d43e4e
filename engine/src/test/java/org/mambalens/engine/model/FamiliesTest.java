package org.mambalens.engine.model;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.mambalens.engine.Fixtures;
import org.mambalens.engine.io.ConfigFile;
import org.mambalens.engine.model.ModelFamily.Capability;
import org.mambalens.engine.model.ModelFamily.Kind;
import org.mambalens.engine.trace.LayerTrace;
import org.mambalens.engine.trace.TraceRecorder;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The registry against the checkpoints: every fixture's model_type resolves, every family has a fixture, and
 * what each descriptor says (kind, layer traces, reverse pass, text classifiers) is what its models do.
 */
class FamiliesTest {
    @TempDir
    Path tmp;

    /** Every checkpoint directory among the golden fixtures and the bundled models. */
    static List<Path> checkpoints() {
        try (Stream<Path> golden = Files.walk(Fixtures.golden()); Stream<Path> bundled = Files.list(Fixtures.repository().resolve("models"))) {
            return Stream.concat(golden, bundled).filter(d -> Files.isRegularFile(d.resolve("config.json"))).sorted().toList();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @Test
    void everyCheckpointResolvesAndEveryFamilyHasOne() {
        Set<String> seen = new HashSet<>();
        for (Path dir : checkpoints()) {
            String type = ConfigFile.in(dir).text("model_type", null);
            assertThat(Families.forDirectory(dir).modelType()).as(dir.toString()).isEqualTo(type);
            assertThat(Families.of(type)).isSameAs(Families.forDirectory(dir));
            seen.add(type);
        }
        assertThat(Families.all()).extracting(ModelFamily::modelType).containsExactlyInAnyOrderElementsOf(seen).isSorted();
    }

    @Test
    void anUnknownModelTypeIsRefusedInOneLineListingEveryFamily() throws IOException {
        String[] all = Families.all().stream().map(ModelFamily::modelType).toArray(String[]::new);
        assertThatThrownBy(() -> Families.of("llama")).isInstanceOf(IllegalArgumentException.class)
                .hasMessageStartingWith("model_type \"llama\" is not supported (supported: ").hasMessageContainingAll(all).hasMessageNotContaining("\n");
        Files.writeString(tmp.resolve("config.json"), "{\"model_type\": \"llama\"}");
        assertThatThrownBy(() -> Families.forDirectory(tmp)).hasMessageContaining("config.json").hasMessageContaining("\"llama\"")
                .hasMessageContainingAll(all).hasMessageNotContaining("\n");
        Files.writeString(tmp.resolve("config.json"), "{}");
        assertThatThrownBy(() -> Families.forDirectory(tmp)).hasMessageContaining("no \"model_type\"").hasMessageContainingAll(all);
    }

    /**
     * Each checkpoint loads as its family's kind; a forward pass records, in every layer, a trace of a kind the
     * descriptor names (and every kind it names is recorded somewhere); the reverse pass runs exactly where the
     * descriptor says there is one; the text classifiers are of the families that say they have one.
     */
    @Test
    void eachDescriptorSaysWhatItsModelsDo() {
        Map<ModelFamily, Set<Class<?>>> recorded = new HashMap<>();
        Set<ModelFamily> classifiers = new HashSet<>();
        for (Path dir : checkpoints()) {
            ModelFamily family = Families.forDirectory(dir);
            if (family.kind() == Kind.LANGUAGE && Models.isTextClassifier(dir)) classifiers.add(family);
            TraceRecorder trace = TraceRecorder.allLayers();
            int layers;
            boolean reversed;
            if (family.kind() == Kind.LANGUAGE) {
                try (LanguageModel lm = Models.loadLanguageModel(dir)) {
                    lm.forward(new int[]{1, 2, 3}, trace);
                    layers = lm.layers();
                    reversed = reverses(() -> lm.forwardWithGradients(new int[]{1, 2, 3}, 2, 0, TraceRecorder.allLayers()));
                }
            } else {
                try (ImageClassifier classifier = Models.loadImageClassifier(dir)) {
                    float[] pixels = new float[classifier.channels() * classifier.imageSize() * classifier.imageSize()];
                    classifier.classify(pixels, trace);
                    layers = classifier.layers();
                    reversed = reverses(() -> classifier.classifyWithGradients(pixels, -1, TraceRecorder.allLayers()));
                }
            }
            for (int l = 0; l < layers; l++) {
                LayerTrace t = trace.layer(l);
                assertThat(family.traces()).as(dir + " layer " + l).contains(t.getClass());
                recorded.computeIfAbsent(family, f -> new HashSet<>()).add(t.getClass());
            }
            assertThat(reversed).as(dir + ": a reverse pass").isEqualTo(family.has(Capability.REVERSE_PASS));
        }
        for (ModelFamily family : Families.all()) assertThat(recorded.get(family)).as(family.modelType()).isEqualTo(family.traces());
        assertThat(classifiers).containsExactlyInAnyOrderElementsOf(Families.all().stream().filter(f -> f.has(Capability.SEQUENCE_CLASSIFICATION)).toList());
    }

    /** Whether a reverse pass runs, rather than saying that the model has none. */
    private static boolean reverses(Runnable reversePass) {
        try {
            reversePass.run();
            return true;
        } catch (UnsupportedOperationException e) {
            return false;
        }
    }
}
