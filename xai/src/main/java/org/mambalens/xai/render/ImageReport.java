package org.mambalens.xai.render;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.TextNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.mambalens.engine.io.AtomicWrite;
import org.mambalens.engine.io.ConfigFile;
import org.mambalens.engine.io.Npy;
import org.mambalens.engine.model.ImageClassifier;
import org.mambalens.xai.data.ImagePreprocessor;
import org.mambalens.xai.attention.AttentionSummary;
import org.mambalens.xai.methods.ImageExplainer;
import org.mambalens.xai.methods.ImageExplainer.Method;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Explains one grayscale image with several classifiers side by side: for each model, its prediction,
 * a relevance map per method (raw attention, rollout, attribution) as a PNG overlay and NPY [H, W], and the
 * attention-matrix images of its layers (|attention| channel/head mean, min-max normalised, first 64
 * tokens: the seed paper's Fig. 4 style); then {@code report.html} and {@code explanation.json}.
 */
public final class ImageReport {
    /** One model to explain: its directory (for preprocessing), the loaded classifier, a display name. */
    public record Subject(String name, Path dir, ImageClassifier model) {
    }

    private static final int SCALE = 8;

    private ImageReport() {
    }

    /**
     * Where a model's relevance maps go, each [size, size] min-max normalised: the explain command writes NPY and
     * PNG files and names the NPY in the JSON, the explorer's API puts the numbers themselves there.
     */
    public interface MapSink {
        JsonNode put(String name, Method method, float[] map, int size);
    }

    /** One model's entry of {@code explanation.json}, with what its report shows beside it. */
    public record Explained(ObjectNode json, ImageExplainer.Result result, int startLayer, String label) {
    }

    /**
     * Explains {@code subject}'s prediction for the image, or class {@code target} (a name from id2label or an index;
     * null: the predicted one): the one function that makes a model's entry of the explanation's JSON, which the
     * explain command and {@code serve} both call.
     *
     * @param gray       the image, 0–255, [size, size]
     * @param startLayer first layer the methods use; -1: 15/24 of the depth, as the seed paper's ViM-tiny code
     */
    public static Explained explain(Subject subject, int[] gray, int size, List<Method> methods, int startLayer, String target, MapSink maps) {
        ImageClassifier model = subject.model();
        if (model.imageSize() != size) throw new IllegalArgumentException(subject.name() + " takes " + model.imageSize() + " px images, the input has " + size);
        float[] pixels = ImagePreprocessor.of(subject.dir(), model).fromGray(gray, size, size);
        int start = ImageExplainer.startLayer(startLayer, model.layers());
        List<String> labels = labels(subject.dir(), model.numClasses());
        int targetClass = target == null ? -1 : classIndex(labels, target);
        ImageExplainer.Result result = ImageExplainer.explain(model, pixels, java.util.EnumSet.copyOf(methods), start, targetClass);
        int predicted = ImageClassifier.checkTarget(-1, result.logits());
        ObjectNode m = JsonNodeFactory.instance.objectNode();
        m.put("name", subject.name());
        m.put("predicted", predicted);
        m.put("label", labels.get(predicted));
        if (result.target() != predicted) {
            m.put("explained", result.target());
            m.put("explained_label", labels.get(result.target()));
        }
        m.put("start_layer", start);
        m.put("cls_position", model.clsPosition());
        for (Method method : methods) m.set(method.name(), maps.put(subject.name(), method, ImageExplainer.pixelMap(result.patches().get(method), result.grid(), size), size));
        return new Explained(m, result, start, labels.get(predicted));
    }

    /** A classifier's class names, as id2label in its config.json spells them (the index where it names none). */
    public static List<String> labels(Path dir, int classes) {
        JsonNode id2label = ConfigFile.in(dir).json().path("id2label");
        return java.util.stream.IntStream.range(0, classes).mapToObj(k -> id2label.path(String.valueOf(k)).asText(String.valueOf(k))).toList();
    }

    /** A class given by name or by index. */
    public static int classIndex(List<String> labels, String nameOrIndex) {
        if (labels.contains(nameOrIndex)) return labels.indexOf(nameOrIndex);
        if (nameOrIndex.strip().matches("\\d{1,9}") && Integer.parseInt(nameOrIndex.strip()) < labels.size()) return Integer.parseInt(nameOrIndex.strip());
        throw new IllegalArgumentException("class \"" + nameOrIndex + "\" is not one of " + labels + " (or an index below " + labels.size() + ")");
    }

    /**
     * Writes {@code report.html}, {@code explanation.json}, the maps (NPY and PNG) and the layers' matrices for
     * the image explained by every subject.
     *
     * @param target the class to explain (see {@link #explain}); null: each model's prediction
     */
    public static Path write(Path out, int[] gray, int size, String imageLabel, List<Subject> subjects, List<Method> methods, int startLayer, String target) {
        // Before anything is drawn: the picture of the input is scaled up, and a huge input would overflow it.
        for (Subject s : subjects) {
            if (s.model().imageSize() != size) throw new IllegalArgumentException(s.name() + " takes " + s.model().imageSize() + " px images, the input has " + size);
        }
        Images.ensureDirectory(out);
        ObjectMapper json = new ObjectMapper();
        ObjectNode doc = json.createObjectNode();
        doc.put("image", imageLabel);
        ArrayNode models = doc.putArray("models");
        Images.write(Images.gray(gray, size, size, SCALE), out.resolve("input.png"));
        StringBuilder html = new StringBuilder("""
                <!doctype html><html><head><meta charset="utf-8"><title>MambaLens explanation</title><style>
                body{font-family:sans-serif;margin:2em;background:#fafafa} table{border-collapse:collapse}
                td,th{padding:6px 10px;text-align:center;vertical-align:top} img{image-rendering:pixelated;border:1px solid #ccc}
                .small{font-size:80%;color:#555}</style></head><body>
                <h1>MambaLens explanation</h1>
                """);
        html.append("<p>Input: ").append(Images.escapeHtml(imageLabel)).append("<br><img src=\"input.png\" width=\"224\"></p>\n<table><tr><th>model</th><th>prediction</th>");
        for (Method m : methods) html.append("<th>").append(title(m)).append("</th>");
        html.append("</tr>\n");
        List<String> matrixRows = new ArrayList<>();
        MapSink files = (name, method, map, mapSize) -> {
            String base = name + "_" + method;
            Npy.writeFloat32(out.resolve(base + ".npy"), map, mapSize, mapSize);
            Images.write(Images.overlay(gray, map, mapSize, mapSize, SCALE), out.resolve(base + ".png"));
            return new TextNode(base + ".npy");
        };
        for (Subject s : subjects) {
            Explained explained = explain(s, gray, size, methods, startLayer, target, files);
            models.add(explained.json());
            ImageExplainer.Result result = explained.result();
            html.append("<tr><td>").append(Images.escapeHtml(s.name())).append("<div class=small>layers ").append(explained.startLayer()).append("–")
                    .append(s.model().layers() - 1).append("</div></td><td>").append(Images.escapeHtml(explained.label())).append("</td>");
            for (Method method : methods) html.append("<td><img src=\"").append(s.name()).append('_').append(method).append(".png\" width=\"224\"></td>");
            html.append("</tr>\n");
            StringBuilder matrices = new StringBuilder("<tr><td>").append(Images.escapeHtml(s.name())).append("</td>");
            for (int l = 0; l < result.layers().size(); l++) {
                AttentionSummary la = result.layers().get(l);
                String file = s.name() + "_layer" + l + "_matrix.png";
                Images.write(Images.matrix(la.absoluteMean(), la.tokens(), 64, 4), out.resolve(file));
                matrices.append("<td><img src=\"").append(file).append("\" width=\"160\"><div class=small>layer ").append(l).append("</div></td>");
            }
            matrixRows.add(matrices.append("</tr>\n").toString());
        }
        html.append("</table>\n<h2>Attention matrices</h2><p class=small>Mamba: mean |α| over channels (both directions); "
                + "Transformer: mean softmax probability over heads; min-max normalised, first 64 tokens. Attribution: Mamba-Attribution "
                + "(from the start layer) and Chefer et al.'s Transformer-Attribution (every layer).</p>\n<table>");
        matrixRows.forEach(html::append);
        html.append("</table>\n</body></html>\n");
        byte[] page = html.toString().getBytes(StandardCharsets.UTF_8);
        AtomicWrite.write(out.resolve("explanation.json"), o -> o.write(json.writerWithDefaultPrettyPrinter().writeValueAsBytes(doc)));
        Path report = out.resolve("report.html");
        AtomicWrite.write(report, o -> o.write(page));
        return report;
    }

    static String title(Method m) {
        return switch (m) {
            case raw -> "raw attention";
            case rollout -> "attention rollout";
            case attribution -> "attribution";
        };
    }
}
