package org.mambalens.xai.eval;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.mambalens.engine.io.AtomicWrite;
import org.mambalens.xai.data.ImageDataset;
import org.mambalens.xai.methods.ImageExplainer.Method;
import org.mambalens.xai.render.Charts;
import org.mambalens.xai.render.Images;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The evaluation's tables from the journal: results.json, results.md (the seed paper's Table 2 layout:
 * methods × models, positive and negative perturbation AUC, then segmentation), per_image.csv, one
 * perturbation-curve PNG per model and report.html.
 *
 * <p>Perturbation: accuracy in % at each step, averaged over images; AUC by the trapezoid rule over the
 * removed fraction 0–0.9 (so 90 at most). Segmentation as Chefer et al.'s evaluation aggregates it:
 * pixel accuracy and mIoU from the confusion counts summed over all images, mAP the mean over images.
 */
final class Results {
    private static final ObjectMapper JSON = new ObjectMapper();

    private Results() {
    }

    /** One method's figures for one model. */
    record Row(double[] positive, double[] negative, double positiveAuc, double negativeAuc, double pixelAccuracy, double miou,
               double map, double millis) {
    }

    static Path write(Path out, ImageDataset data, Map<Integer, JsonNode> images, List<Evaluation.Subject> subjects, List<Method> methods,
                      Map<String, Integer> startLayers, Evaluation.Fill fill) {
        List<String> names = new ArrayList<>();
        methods.forEach(m -> names.add(m.name()));
        names.add(Evaluation.RANDOM);
        int n = images.size();
        if (n == 0) throw new IllegalArgumentException("no images were evaluated");
        ObjectNode doc = JSON.createObjectNode();
        ObjectNode models = doc.putObject("models");
        ObjectNode modelInfo = JSON.createObjectNode();
        Map<String, Map<String, Row>> table = new LinkedHashMap<>();
        for (Evaluation.Subject s : subjects) {
            Map<String, Row> rows = new LinkedHashMap<>();
            ObjectNode m = models.putObject(s.name());
            int correct = 0;
            for (JsonNode image : images.values()) {
                if (image.path("models").path(s.name()).path("predicted").asInt() == image.path("label").asInt()) correct++;
            }
            for (String method : names) {
                Row row = row(images.values(), s.name(), method);
                rows.put(method, row);
                ObjectNode r = m.putObject(method);
                r.put("positive_auc", row.positiveAuc()).put("negative_auc", row.negativeAuc())
                        .put("pixel_accuracy", row.pixelAccuracy()).put("miou", row.miou()).put("map", row.map());
                ArrayNode pc = r.putArray("positive_curve"), nc = r.putArray("negative_curve");
                for (double v : row.positive()) pc.add(v);
                for (double v : row.negative()) nc.add(v);
                if (!Double.isNaN(row.millis())) r.put("ms_per_image", row.millis());
            }
            ObjectNode info = modelInfo.putObject(s.name());
            info.put("dir", s.dir().toString()).put("start_layer", startLayers.get(s.name())).put("top1_accuracy", (double) correct / n);
            table.put(s.name(), rows);
        }
        doc.put("images", n);
        doc.put("fill", fill.name());
        doc.set("model_info", modelInfo);
        ArrayNode steps = doc.putArray("steps");
        for (double st : Metrics.STEPS) steps.add(st);
        doc.put("dataset", data.title() + " test split, the first " + n + " images");

        Path json = out.resolve("results.json");
        AtomicWrite.write(json, o -> o.write(JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(doc)));
        byte[] md = markdown(data, table, n, fill).getBytes(StandardCharsets.UTF_8);
        AtomicWrite.write(out.resolve("results.md"), o -> o.write(md));
        byte[] csv = csv(images, subjects, names).getBytes(StandardCharsets.UTF_8);
        AtomicWrite.write(out.resolve("per_image.csv"), o -> o.write(csv));
        for (var e : table.entrySet()) {
            List<double[]> series = new ArrayList<>();
            List<Boolean> dashed = new ArrayList<>();
            for (Row r : e.getValue().values()) {
                series.add(r.positive());
                dashed.add(false);
            }
            for (Row r : e.getValue().values()) {
                series.add(r.negative());
                dashed.add(true);
            }
            Images.write(Charts.lines(Metrics.STEPS, series, dashed, 1.0, 100, 480, 320), out.resolve("curves_" + e.getKey() + ".png"));
        }
        byte[] html = html(data, table, names, n, new String(md, StandardCharsets.UTF_8)).getBytes(StandardCharsets.UTF_8);
        AtomicWrite.write(out.resolve("report.html"), o -> o.write(html));
        return json;
    }

    private static Row row(Iterable<JsonNode> images, String model, String method) {
        int steps = Metrics.STEPS.length, n = 0, apCount = 0, msCount = 0;
        double[] pos = new double[steps], neg = new double[steps];
        double ap = 0, ms = 0;
        Metrics.Confusion total = new Metrics.Confusion(0, 0, 0, 0);
        for (JsonNode image : images) {
            JsonNode r = image.path("models").path(model).path("methods").path(method);
            if (r.isMissingNode()) throw new IllegalArgumentException("image " + image.path("image").asInt() + " has no " + model + "/" + method);
            n++;
            for (int k = 0; k < steps; k++) {
                pos[k] += r.path("positive").get(k).asDouble();
                neg[k] += r.path("negative").get(k).asDouble();
            }
            total = total.plus(new Metrics.Confusion(r.path("tp").asLong(), r.path("fp").asLong(), r.path("fn").asLong(), r.path("tn").asLong()));
            if (r.path("ap").isNumber() && !Double.isNaN(r.path("ap").asDouble())) {
                ap += r.path("ap").asDouble();
                apCount++;
            }
            if (r.has("ms")) {
                ms += r.path("ms").asDouble();
                msCount++;
            }
        }
        for (int k = 0; k < steps; k++) {
            pos[k] = 100 * pos[k] / n;
            neg[k] = 100 * neg[k] / n;
        }
        return new Row(pos, neg, Metrics.auc(pos), Metrics.auc(neg), 100 * total.pixelAccuracy(), 100 * total.meanIoU(),
                100 * ap / Math.max(1, apCount), msCount == 0 ? Double.NaN : ms / msCount);
    }

    private static String markdown(ImageDataset data, Map<String, Map<String, Row>> table, int n, Evaluation.Fill fill) {
        StringBuilder md = new StringBuilder("# Explanation faithfulness on " + data.title() + " (" + n + " test images)\n\n");
        md.append("Perturbation AUC (accuracy in % w.r.t. the unperturbed prediction, 0–90 % of the pixels removed; positive: ")
                .append("most relevant first, lower is better; negative: least relevant first, higher is better; a removed pixel is set to ")
                .append(fill == Evaluation.Fill.mean ? "the dataset mean, 0 after normalisation" : "black, the background").append("). ")
                .append("Segmentation of the foreground (").append(data.foreground()).append("): pixel accuracy and mIoU of the map thresholded at its mean, ")
                .append("mAP of the continuous map (all in %, higher is better). `random` is a uniform random map: chance level.\n\n");
        List<String> models = new ArrayList<>(table.keySet());
        String header = "| method | " + String.join(" | ", models) + " |\n|---|" + "---|".repeat(models.size()) + "\n";
        String[][] sections = {{"Positive perturbation AUC ↓", "pos"}, {"Negative perturbation AUC ↑", "neg"},
                {"Pixel accuracy ↑", "acc"}, {"mIoU ↑", "miou"}, {"mAP ↑", "map"}};
        for (String[] section : sections) {
            md.append("### ").append(section[0]).append("\n\n").append(header);
            for (String method : table.get(models.get(0)).keySet()) {
                md.append("| ").append(method).append(" |");
                for (String model : models) {
                    Row r = table.get(model).get(method);
                    double v = switch (section[1]) {
                        case "pos" -> r.positiveAuc();
                        case "neg" -> r.negativeAuc();
                        case "acc" -> r.pixelAccuracy();
                        case "miou" -> r.miou();
                        default -> r.map();
                    };
                    md.append(String.format(" %.3f |", v));
                }
                md.append("\n");
            }
            md.append("\n");
        }
        md.append("### Time per image to compute the map (ms, one thread per image)\n\n").append(header);
        for (String method : table.get(models.get(0)).keySet()) {
            if (method.equals(Evaluation.RANDOM)) continue;
            md.append("| ").append(method).append(" |");
            for (String model : models) md.append(String.format(" %.2f |", table.get(model).get(method).millis()));
            md.append("\n");
        }
        return md.toString();
    }

    private static String csv(Map<Integer, JsonNode> images, List<Evaluation.Subject> subjects, List<String> methods) {
        StringBuilder csv = new StringBuilder("image,label,model,predicted,method");
        for (double s : Metrics.STEPS) csv.append(String.format(",positive_%d", Math.round(100 * s)));
        for (double s : Metrics.STEPS) csv.append(String.format(",negative_%d", Math.round(100 * s)));
        csv.append(",tp,fp,fn,tn,ap,ms\n");
        for (JsonNode image : images.values()) {
            for (Evaluation.Subject s : subjects) {
                JsonNode m = image.path("models").path(s.name());
                for (String method : methods) {
                    JsonNode r = m.path("methods").path(method);
                    csv.append(image.path("image").asInt()).append(',').append(image.path("label").asInt()).append(',').append(s.name())
                            .append(',').append(m.path("predicted").asInt()).append(',').append(method);
                    for (JsonNode v : r.path("positive")) csv.append(',').append(v.asInt());
                    for (JsonNode v : r.path("negative")) csv.append(',').append(v.asInt());
                    csv.append(',').append(r.path("tp").asLong()).append(',').append(r.path("fp").asLong()).append(',').append(r.path("fn").asLong())
                            .append(',').append(r.path("tn").asLong()).append(',').append(r.path("ap").asDouble())
                            .append(',').append(r.has("ms") ? String.valueOf(r.path("ms").asDouble()) : "").append('\n');
                }
            }
        }
        return csv.toString();
    }

    private static String html(ImageDataset data, Map<String, Map<String, Row>> table, List<String> methods, int n, String markdown) {
        StringBuilder h = new StringBuilder("""
                <!doctype html><html><head><meta charset="utf-8"><title>MambaLens evaluation</title><style>
                body{font-family:sans-serif;margin:2em;background:#fafafa} pre{background:#fff;padding:1em;border:1px solid #ddd}
                .key{display:inline-block;width:2em;height:0;border-top:3px solid;margin:0 .4em 3px 1em}
                .dashed{border-top-style:dashed}</style></head><body><h1>MambaLens evaluation</h1>
                """);
        h.append("<p>").append(n).append(" ").append(Images.escapeHtml(data.title())).append(" test images. Curves: accuracy (%, 0–100, w.r.t. the unperturbed prediction) ")
                .append("against the fraction of pixels removed (0–1): solid most relevant first (positive), dashed least relevant first (negative).</p><p>");
        for (int k = 0; k < methods.size(); k++) {
            h.append("<span class=key style=\"border-color:").append(Charts.COLOURS[k % Charts.COLOURS.length]).append("\"></span>")
                    .append(Images.escapeHtml(methods.get(k)));
        }
        h.append("</p>");
        for (String model : table.keySet()) {
            h.append("<h2>").append(Images.escapeHtml(model)).append("</h2><img src=\"curves_").append(Images.escapeHtml(model)).append(".png\">");
        }
        h.append("<h2>Tables</h2><pre>").append(Images.escapeHtml(markdown)).append("</pre></body></html>\n");
        return h.toString();
    }
}
