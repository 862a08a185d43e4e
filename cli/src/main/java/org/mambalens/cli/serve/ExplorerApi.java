package org.mambalens.cli.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.mambalens.engine.model.ImageClassifier;
import org.mambalens.engine.trace.TraceRecorder;
import org.mambalens.xai.attention.AttentionMaps;
import org.mambalens.xai.attention.UnitRanking;
import org.mambalens.xai.data.ImagePreprocessor;
import org.mambalens.xai.methods.ImageExplainer.Method;
import org.mambalens.xai.methods.TopOutputs;
import org.mambalens.xai.render.ImageReport;
import org.mambalens.xai.render.TextReport;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.function.IntFunction;
import java.util.stream.IntStream;
import java.util.stream.Stream;

/**
 * What the explorer's JSON API answers, independent of HTTP: each endpoint takes the request's fields and returns
 * the response document. Errors are {@link ApiException}s (bad input, unknown model) or the engine's own one-line
 * exceptions.
 */
final class ExplorerApi {
    static final Set<String> PREDICT_FIELDS = Set.of("model", "text", "image", "example", "position", "top"),
            EXPLAIN_FIELDS = Set.of("model", "models", "text", "image", "example", "position", "target", "method", "start_layer"),
            ATTENTION_FIELDS = Set.of("model", "text", "image", "example", "layer", "index", "ranked");

    /** The texts the page offers to start with. */
    static final List<String> EXAMPLE_TEXTS = List.of("The best way to predict the future is",
            "The compiler crashed and the kernel panicked at dawn", "Never trust a computer you can't throw out a window.");

    private static final JsonNodeFactory NODES = JsonNodeFactory.instance;

    private final ModelCatalog catalog;
    private final Path exampleImages;

    /** @param exampleImages the folder of the bundled images ({@code data/fashion-mnist}) */
    ExplorerApi(ModelCatalog catalog, Path exampleImages) {
        this.catalog = catalog;
        this.exampleImages = exampleImages;
    }

    /** GET /api/models: every model on offer, with its kind and what it can be explained with. */
    ObjectNode models() {
        ObjectNode doc = NODES.objectNode();
        ArrayNode list = doc.putArray("models");
        for (ModelCatalog.Entry e : catalog.entries()) {
            ObjectNode m = list.addObject();
            m.put("name", e.name());
            m.put("kind", e.kind());
            m.put("model_type", e.family().modelType());
            m.put("family", e.family().name());
            m.put("bundled", e.bundled());
            ArrayNode methods = m.putArray("methods");
            for (Method method : Method.values()) if (method.supports(e.family())) methods.add(method.name());
        }
        return doc;
    }

    /** GET /api/examples: the bundled texts and images the page starts from. */
    ObjectNode examples() {
        ObjectNode doc = NODES.objectNode();
        ArrayNode texts = doc.putArray("texts"), images = doc.putArray("images");
        EXAMPLE_TEXTS.forEach(texts::add);
        exampleImageNames().forEach(images::add);
        return doc;
    }

    /** GET /api/examples/NAME: one bundled image's bytes, found by name among those listed (never resolved as a path). */
    byte[] exampleImage(String name) {
        if (!exampleImageNames().contains(name)) throw new ApiException(ApiException.NOT_FOUND, "no example image \"" + name + "\"");
        try {
            return Files.readAllBytes(exampleImages.resolve(name));
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    private List<String> exampleImageNames() {
        if (!Files.isDirectory(exampleImages)) return List.of();
        try (Stream<Path> files = Files.list(exampleImages)) {
            return files.map(f -> f.getFileName().toString()).filter(n -> n.endsWith(".png")).sorted().toList();
        } catch (IOException e) {
            return List.of();
        }
    }

    /** POST /api/predict: the model's most probable outputs (next tokens at a position, labels, classes). */
    ObjectNode predict(JsonRequest r) {
        ModelCatalog.Entry entry = catalog.find(oneModel(r));
        int top = r.integer("top", 10);
        if (top < 1) throw new ApiException(ApiException.BAD_REQUEST, "\"top\" must be at least 1, not " + top);
        ObjectNode doc = NODES.objectNode();
        doc.put("model", entry.name());
        doc.put("kind", entry.kind());
        float[] logits;
        IntFunction<String> names;
        switch (catalog.load(entry)) {
            case LoadedModel.Text text -> {
                int[] ids = text.encode(requiredText(r, entry));
                int position = r.integer("position", text.defaultPosition(ids));
                text.target(ids, position, null);                               // checks the position
                tokens(doc, ids, text);
                doc.put("position", position);
                int outputs = text.lm().outputs();
                logits = Arrays.copyOfRange(text.lm().forward(ids, null), position * outputs, (position + 1) * outputs);
                names = text::output;
            }
            case LoadedModel.Image image -> {
                ImageClassifier classifier = image.classifier();
                logits = classifier.classify(pixels(image, requiredImage(r, entry)), null);
                names = image.labels()::get;
            }
        }
        ArrayNode predictions = doc.putArray("predictions");
        for (TopOutputs.Output o : TopOutputs.of(logits, top)) {
            predictions.addObject().put("index", o.index()).put("name", names.apply(o.index())).put("probability", o.probability());
        }
        return doc;
    }

    /**
     * POST /api/explain: the explain command's explanation.json for the same input — a text model's (one model, any
     * position and target), or the image models' (one or several), their relevance maps inline as [H][W] arrays
     * instead of NPY file names.
     */
    ObjectNode explain(JsonRequest r) {
        String option = r.text("method", "all");
        List<Method> methods = Method.parse(option);
        int startLayer = r.integer("start_layer", -1);
        String target = r.text("target", null);
        List<String> notes = new ArrayList<>();
        if (r.has("model") && r.has("models")) throw new ApiException(ApiException.BAD_REQUEST, "give \"model\" or \"models\", not both");
        List<ModelCatalog.Entry> entries = r.has("models") ? r.texts("models").stream().map(catalog::find).toList() : List.of(catalog.find(oneModel(r)));
        for (ModelCatalog.Entry e : entries) methods = Method.supported(methods, option, e.family(), notes::add);
        ObjectNode doc;
        if (!entries.getFirst().isImage()) {
            if (entries.size() > 1) throw new ApiException(ApiException.BAD_REQUEST, "--text explains one language model; give one model");
            LoadedModel.Text text = (LoadedModel.Text) catalog.load(entries.getFirst());
            String input = requiredText(r, entries.getFirst());
            int[] ids = text.encode(input);
            TextReport.Target chosen = text.target(ids, r.integer("position", text.defaultPosition(ids)), target);
            doc = TextReport.explain(text.family(), text.lm(), ids, text::token, input, methods, startLayer, chosen).json();
        } else {
            ImageInput image = requiredImage(r, entries.getFirst());
            doc = NODES.objectNode();
            doc.put("image", image.label());
            ArrayNode models = doc.putArray("models");
            for (ModelCatalog.Entry e : entries) {
                if (!e.isImage()) {
                    throw new ApiException(ApiException.BAD_REQUEST, "model " + e.name() + " is a " + e.kind() + " model; images are explained by image classifiers");
                }
            }
            for (ModelCatalog.Entry e : entries) {
                LoadedModel.Image loaded = (LoadedModel.Image) catalog.load(e);
                int size = loaded.classifier().imageSize();
                var subject = new ImageReport.Subject(e.name(), loaded.dir(), loaded.classifier());
                models.add(ImageReport.explain(subject, image.square(size), size, methods, startLayer, target, (name, method, map, mapSize) -> matrix(map, mapSize)).json());
            }
        }
        if (!notes.isEmpty()) {
            ArrayNode said = doc.putArray("notes");                 // what the explain command prints as "note:" lines
            notes.forEach(said::add);
        }
        return doc;
    }

    /**
     * POST /api/attention: without "layer", every layer's mean |A| over its channels or heads ("means" [layers][T][T]);
     * with it, that layer's units ranked as compare-attention ranks them and its matrix: the mean |A|, or with "index"
     * one channel's or head's A as the attention command writes it.
     */
    ObjectNode attention(JsonRequest r) {
        ModelCatalog.Entry entry = catalog.find(oneModel(r));
        LoadedModel model = catalog.load(entry);
        Integer layer = r.integer("layer", null), index = r.integer("index", null);
        int ranked = r.integer("ranked", 16);
        if (index != null && layer == null) throw new ApiException(ApiException.BAD_REQUEST, "\"index\" needs \"layer\"");
        ObjectNode doc = NODES.objectNode();
        doc.put("model", entry.name());
        TraceRecorder trace = layer == null ? TraceRecorder.allLayers() : TraceRecorder.layers(Set.of(layer));
        int layers;
        switch (model) {
            case LoadedModel.Text text -> {
                layers = checkLayer(layer, text.lm().layers());
                int[] ids = text.encode(requiredText(r, entry));
                text.lm().forward(ids, trace);
                tokens(doc, ids, text);
            }
            case LoadedModel.Image image -> {
                layers = checkLayer(layer, image.classifier().layers());
                image.classifier().classify(pixels(image, requiredImage(r, entry)), trace);
                patchTokens(doc, AttentionMaps.units(trace.layer(layer == null ? 0 : layer)).tokens(), image.classifier().clsPosition());
            }
        }
        doc.put("layers", layers);
        if (layer == null) {
            ArrayNode means = doc.putArray("means");
            for (int l = 0; l < layers; l++) {
                AttentionMaps.Units units = AttentionMaps.units(trace.layer(l));
                if (l == 0) doc.put("unit", units.unit()).put("units", units.count());
                means.add(matrix(UnitRanking.of(units).absoluteMean(), units.tokens()));          // the mean as a single layer's answer gives it
            }
            return doc;
        }
        AttentionMaps.Units units = AttentionMaps.units(trace.layer(layer));
        UnitRanking ranking = UnitRanking.of(units);
        doc.put("layer", layer).put("unit", units.unit()).put("units", units.count());
        ArrayNode list = doc.putArray("ranking");
        for (int c : ranking.top(Math.max(0, ranked))) list.addObject().put("index", c).put("off_diagonal_share", ranking.offDiagonalShare()[c]);
        if (index == null) {
            doc.set("matrix", matrix(ranking.absoluteMean(), units.tokens()));
        } else {
            if (index < 0 || index >= units.count()) {
                throw new ApiException(ApiException.BAD_REQUEST, "\"index\" " + index + " is outside the layer's " + units.unit() + "s [0, " + units.count() + ")");
            }
            doc.put("index", index);
            doc.set("matrix", matrix(units.matrix().apply(index), units.tokens()));
        }
        return doc;
    }

    private static int checkLayer(Integer layer, int layers) {
        if (layer != null && (layer < 0 || layer >= layers)) throw new ApiException(ApiException.BAD_REQUEST, "--layer " + layer + " is outside [0, " + layers + ")");
        return layers;
    }

    private static String oneModel(JsonRequest r) {
        String name = r.text("model", null);
        if (name == null) throw new ApiException(ApiException.BAD_REQUEST, "\"model\" is needed (GET /api/models lists them)");
        return name;
    }

    private static String requiredText(JsonRequest r, ModelCatalog.Entry entry) {
        String text = r.text("text", null);
        if (text == null) throw new ApiException(ApiException.BAD_REQUEST, "\"text\" is needed: " + entry.name() + " is a " + entry.kind() + " model");
        return text;
    }

    private ImageInput requiredImage(JsonRequest r, ModelCatalog.Entry entry) {
        if (r.has("image")) return ImageInput.fromBase64("image", r.text("image", null));
        if (r.has("example")) {
            String name = r.text("example", null);
            return ImageInput.fromBytes(name, exampleImage(name));
        }
        throw new ApiException(ApiException.BAD_REQUEST, "\"image\" (base64) or \"example\" is needed: " + entry.name() + " is an image model");
    }

    private static float[] pixels(LoadedModel.Image image, ImageInput input) {
        int size = image.classifier().imageSize();
        return ImagePreprocessor.of(image.dir(), image.classifier()).fromGray(input.square(size), size, size);
    }

    private static void tokens(ObjectNode doc, int[] ids, LoadedModel.Text text) {
        ArrayNode idList = doc.putArray("token_ids"), tokens = doc.putArray("tokens");
        for (int id : ids) {
            idList.add(id);
            tokens.add(text.token(id));
        }
    }

    /** An image model's T tokens: the cls token, and each patch as "row,column" of the patch grid. */
    private static void patchTokens(ObjectNode doc, int tokens, int cls) {
        ArrayNode names = doc.putArray("tokens");
        int grid = (int) Math.round(Math.sqrt(tokens - 1));
        for (int t = 0, patch = 0; t < tokens; t++) names.add(t == cls ? "cls" : (patch / grid) + "," + (patch++ % grid));
    }

    /** A row-major [n, n] matrix as nested arrays. */
    private static ArrayNode matrix(float[] values, int n) {
        ArrayNode rows = NODES.arrayNode(n);
        for (int i = 0; i < n; i++) {
            ArrayNode row = rows.addArray();
            IntStream.range(i * n, (i + 1) * n).forEach(k -> row.add(values[k]));
        }
        return rows;
    }
}
