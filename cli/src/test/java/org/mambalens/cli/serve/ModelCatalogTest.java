package org.mambalens.cli.serve;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.mambalens.engine.Fixtures;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class ModelCatalogTest {
    @TempDir
    Path tmp;

    @Test
    void eachCheckpointIsLoadedOnceHoweverManyAskAtOnce() throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(16);
        try (ModelCatalog catalog = new ModelCatalog(Fixtures.repository().resolve("models"), null)) {
            ModelCatalog.Entry entry = catalog.find("vit-fashion");
            List<Future<LoadedModel>> loads = new ArrayList<>();
            for (int k = 0; k < 16; k++) loads.add(pool.submit(() -> catalog.load(entry)));
            Set<LoadedModel> distinct = Collections.newSetFromMap(new IdentityHashMap<>());
            for (Future<LoadedModel> f : loads) distinct.add(f.get());
            assertThat(distinct).hasSize(1);
        } finally {
            pool.shutdown();
        }
    }

    /** A checkpoint that fails to load says why in one line, and is tried again next time (it may have been fixed). */
    @Test
    void aFailedLoadIsReportedAndNotKept() throws Exception {
        Path broken = Files.createDirectories(tmp.resolve("broken"));
        Files.copy(Fixtures.repository().resolve("models/vit-fashion/config.json"), broken.resolve("config.json"));
        try (ModelCatalog catalog = new ModelCatalog(tmp.resolve("no-bundled-models"), tmp)) {
            ModelCatalog.Entry entry = catalog.find("broken");
            assertThatThrownBy(() -> catalog.load(entry)).hasMessageContaining("broken").satisfies(e -> assertThat(e.getMessage()).doesNotContain("\n"));
            for (String f : List.of("model.safetensors", "preprocessor_config.json")) {
                Files.copy(Fixtures.repository().resolve("models/vit-fashion").resolve(f), broken.resolve(f));
            }
            assertThat(catalog.load(entry)).isInstanceOf(LoadedModel.Image.class);
        }
    }
}
