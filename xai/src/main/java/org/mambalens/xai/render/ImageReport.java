package org.mambalens.xai.render;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.mambalens.engine.io.AtomicWrite;
import org.mambalens.engine.io.ConfigFile;
import org.mambalens.engine.io.Npy;
import org.mambalens.engine.model.ImageClassifier;
import org.mambalens.engine.model.vim.VimModel;
import org.mambalens.engine.text.Sampler;
import org.mambalens.engine.trace.TraceRecorder;
import org.mambalens.xai.data.ImagePreprocessor;
import org.mambalens.xai.methods.Explanations;
import org.mambalens.xai.methods.LayerAttention;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Explains one grayscale image with several classifiers side by side: for each model, its prediction,
 * a relevance map per method (raw attention, rollout) as a PNG overlay and NPY [H, W], and the
 * attention-matrix images of its layers (|attention| channel/head mean, min-max normalised, first 64
 * tokens: the seed paper's Fig. 4 style); then {@code report.html} and {@code explanation.json}.
 */
public final class ImageReport {
    /** A method by name. */
    public enum Method { raw, rollout }

    /** One model to explain: its directory (for preprocessing), the loaded classifier, a display name. */
    public record Subject(String name, Path dir, ImageClassifier model) {
    }

    private static final int SCALE = 8;

    private ImageReport() {
    }

    /**
     * @param gray       the image, 0–255, [size, size]
     * @param startLayer first layer the methods use; -1: 15/24 of the depth, as the seed paper's ViM-tiny code
     */
    public static Path write(Path out, int[] gray, int size, String imageLabel, List<Subject> subjects, List<Method> methods, int startLayer) {
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
        for (Method m : methods) html.append("<th>").append(m == Method.raw ? "raw attention" : "attention rollout").append("</th>");
        html.append("</tr>\n");
        List<String> matrixRows = new ArrayList<>();
        for (Subject s : subjects) {
            ImageClassifier model = s.model();
            if (model.imageSize() != size) throw new IllegalArgumentException(s.name() + " takes " + model.imageSize() + " px images, the input has " + size);
            float[] pixels = ImagePreprocessor.of(s.dir(), model).fromGray(gray, size, size);
            TraceRecorder trace = TraceRecorder.allLayers();
            float[] logits = model.classify(pixels, trace);
            boolean mamba = model instanceof VimModel;
            List<LayerAttention> layers = new ArrayList<>();
            for (int l = 0; l < model.layers(); l++) layers.add(mamba ? LayerAttention.mamba(trace, l) : LayerAttention.transformer(trace, l));
            int start = startLayer >= 0 ? Math.min(startLayer, model.layers() - 1) : model.layers() * 15 / 24;
            int cls = mamba ? ((VimModel) model).config().clsPosition() : 0;
            int grid = (int) Math.round(Math.sqrt(layers.get(0).tokens() - 1));
            int predicted = Sampler.argmax(logits);
            String label = ConfigFile.in(s.dir()).json().path("id2label").path(String.valueOf(predicted)).asText(String.valueOf(predicted));
            ObjectNode m = models.addObject();
            m.put("name", s.name());
            m.put("predicted", predicted);
            m.put("label", label);
            m.put("start_layer", start);
            m.put("cls_position", cls);
            html.append("<tr><td>").append(Images.escapeHtml(s.name())).append("<div class=small>layers ").append(start).append("–")
                    .append(model.layers() - 1).append("</div></td><td>").append(Images.escapeHtml(label)).append("</td>");
            for (Method method : methods) {
                float[] row = method == Method.raw ? Explanations.raw(layers, start, cls) : Explanations.rollout(layers, start, cls);
                float[] map = Explanations.normalised(Explanations.upsample(Explanations.patchMap(row, cls), grid, size));
                String base = s.name() + "_" + method;
                Npy.writeFloat32(out.resolve(base + ".npy"), map, size, size);
                Images.write(Images.overlay(gray, map, size, size, SCALE), out.resolve(base + ".png"));
                m.put(method.name(), base + ".npy");
                html.append("<td><img src=\"").append(base).append(".png\" width=\"224\"></td>");
            }
            html.append("</tr>\n");
            StringBuilder matrices = new StringBuilder("<tr><td>").append(Images.escapeHtml(s.name())).append("</td>");
            for (int l = 0; l < layers.size(); l++) {
                LayerAttention la = layers.get(l);
                float[] abs = mamba ? meanAbs(la) : la.mean();               // softmax weights are never negative
                String file = s.name() + "_layer" + l + "_matrix.png";
                Images.write(Images.matrix(abs, la.tokens(), 64, 4), out.resolve(file));
                matrices.append("<td><img src=\"").append(file).append("\" width=\"160\"><div class=small>layer ").append(l).append("</div></td>");
            }
            matrixRows.add(matrices.append("</tr>\n").toString());
        }
        html.append("</table>\n<h2>Attention matrices</h2><p class=small>Mamba: mean |α| over channels (both directions); "
                + "Transformer: mean softmax probability over heads; min-max normalised, first 64 tokens.</p>\n<table>");
        matrixRows.forEach(html::append);
        html.append("</table>\n</body></html>\n");
        byte[] page = html.toString().getBytes(StandardCharsets.UTF_8);
        AtomicWrite.write(out.resolve("explanation.json"), o -> o.write(json.writerWithDefaultPrettyPrinter().writeValueAsBytes(doc)));
        Path report = out.resolve("report.html");
        AtomicWrite.write(report, o -> o.write(page));
        return report;
    }

    private static float[] meanAbs(LayerAttention la) {
        int T = la.tokens();
        float[] out = new float[T * T];
        for (int c = 0; c < la.count(); c++) for (int k = 0; k < T * T; k++) out[k] += Math.abs(la.values()[c * T * T + k]);
        return out;
    }
}
