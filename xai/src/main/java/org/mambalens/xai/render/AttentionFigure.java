package org.mambalens.xai.render;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.mambalens.engine.io.AtomicWrite;
import org.mambalens.engine.io.MemoryBudget;
import org.mambalens.engine.io.Npy;
import org.mambalens.engine.model.LanguageModel;
import org.mambalens.engine.trace.TraceRecorder;
import org.mambalens.xai.attention.AttentionMaps;
import org.mambalens.xai.attention.UnitRanking;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.IntFunction;

/**
 * The seed paper's Fig. 4 for text: the attention matrices of several language models on the same text, side by
 * side, layer by layer — per layer the mean of |A| over its channels (Mamba's hidden attention α, DESIGN §3) or
 * heads (GPT-NeoX's softmax probabilities, Mamba-2's heads), and the chosen channels or heads themselves, each
 * picture min-max normalised on its own. A layer's chosen units are those whose |A| reaches furthest into the
 * past: the highest share of |A| off the diagonal (a channel whose matrix is nearly diagonal shows nothing
 * about how tokens mix). Writes {@code report.html}, one folder of PNGs per model, {@code layers.npy}
 * [layers, T, T] and {@code chosen.npy} [layers, K, T, T] (|A|, not normalised) per model, and {@code figure.json}.
 */
public final class AttentionFigure {
    private AttentionFigure() {
    }

    /** A model and the text as its tokenizer encodes it; {@code decode} spells one token. */
    public record Subject(String name, LanguageModel model, int[] ids, IntFunction<String> decode) {
    }

    /** One model's matrices: per layer the unit mean [T, T], the chosen units' indices and their [T, T] matrices. */
    record Panel(Subject subject, int tokens, String unit, int units, List<float[]> means, List<int[]> chosen,
                 List<double[]> shares, List<List<float[]>> matrices) {
    }

    /** Writes the figure for the first {@code tokens} tokens of each subject's text, {@code chosen} units per layer. */
    public static Path write(Path out, String text, List<Subject> subjects, int tokens, int chosen) {
        if (tokens < 2) throw new IllegalArgumentException("--tokens must be at least 2, not " + tokens);
        if (chosen < 0) throw new IllegalArgumentException("--chosen must be at least 0, not " + chosen);
        Images.ensureDirectory(out);
        List<Panel> panels = new ArrayList<>();
        for (Subject s : subjects) panels.add(panel(s, tokens, chosen));
        ObjectMapper json = new ObjectMapper();
        ObjectNode doc = json.createObjectNode();
        doc.put("text", text);
        doc.put("rule", "chosen: the units with the highest share of |A| off the diagonal, per layer");
        ArrayNode models = doc.putArray("models");
        for (Panel p : panels) {
            Path dir = out.resolve(p.subject().name());
            Images.ensureDirectory(dir);
            int T = p.tokens(), layers = p.means().size(), K = p.chosen().isEmpty() ? 0 : p.chosen().get(0).length;
            int scale = Math.max(2, 256 / T);
            float[] means = new float[layers * T * T], picked = new float[layers * K * T * T];
            ObjectNode m = models.addObject();
            m.put("name", p.subject().name());
            m.put("unit", p.unit());
            m.put("units", p.units());
            m.put("layers", layers);
            ArrayNode ids = m.putArray("token_ids"), toks = m.putArray("tokens");
            for (int t = 0; t < T; t++) {
                ids.add(p.subject().ids()[t]);
                toks.add(p.subject().decode().apply(p.subject().ids()[t]));
            }
            ArrayNode chosenJson = m.putArray("chosen"), shareJson = m.putArray("off_diagonal_share");
            for (int l = 0; l < layers; l++) {
                System.arraycopy(p.means().get(l), 0, means, l * T * T, T * T);
                Images.write(Images.matrix(p.means().get(l), T, T, scale), dir.resolve("layer" + l + ".png"));
                ArrayNode c = chosenJson.addArray(), sh = shareJson.addArray();
                for (int k = 0; k < K; k++) {
                    int u = p.chosen().get(l)[k];
                    c.add(u);
                    sh.add(p.shares().get(l)[u]);
                    System.arraycopy(p.matrices().get(l).get(k), 0, picked, ((l * K) + k) * T * T, T * T);
                    Images.write(Images.matrix(p.matrices().get(l).get(k), T, T, scale), dir.resolve("layer" + l + "_" + p.unit() + u + ".png"));
                }
            }
            Npy.writeFloat32(dir.resolve("layers.npy"), means, layers, T, T);
            Npy.writeFloat32(dir.resolve("chosen.npy"), picked, layers, K, T, T);
        }
        byte[] page = html(text, panels).getBytes(StandardCharsets.UTF_8);
        AtomicWrite.write(out.resolve("figure.json"), o -> o.write(json.writerWithDefaultPrettyPrinter().writeValueAsBytes(doc)));
        Path report = out.resolve("report.html");
        AtomicWrite.write(report, o -> o.write(page));
        return report;
    }

    private static Panel panel(Subject s, int tokens, int chosen) {
        int[] ids = Arrays.copyOf(s.ids(), Math.min(tokens, s.ids().length));
        int T = ids.length;
        // Per layer: the mean, the chosen units' matrices and the one being read, each [T, T].
        MemoryBudget.require(MemoryBudget.product(s.model().layers(), chosen + 2, T, T, Float.BYTES), "--tokens " + T + " for " + s.name());
        System.err.printf("%s: %d layers on %d tokens%n", s.name(), s.model().layers(), T);
        TraceRecorder trace = TraceRecorder.allLayers();
        s.model().forward(ids, trace);
        List<float[]> means = new ArrayList<>();
        List<int[]> picks = new ArrayList<>();
        List<double[]> shares = new ArrayList<>();
        List<List<float[]>> matrices = new ArrayList<>();
        String unit = null;
        int count = 0;
        for (int l = 0; l < s.model().layers(); l++) {
            AttentionMaps.Units units = AttentionMaps.units(trace.layer(l));
            unit = units.unit();
            count = units.count();
            UnitRanking ranking = UnitRanking.of(units);                  // first pass: the mean and each unit's score
            int[] pick = ranking.top(chosen);
            List<float[]> picked = new ArrayList<>();                     // second pass: only the chosen units are kept
            for (int c : pick) {
                float[] a = units.matrix().apply(c);
                for (int k = 0; k < a.length; k++) a[k] = Math.abs(a[k]);
                picked.add(a);
            }
            means.add(ranking.absoluteMean());
            picks.add(pick);
            shares.add(ranking.offDiagonalShare());
            matrices.add(picked);
        }
        return new Panel(new Subject(s.name(), s.model(), ids, s.decode()), T, unit, count, means, picks, shares, matrices);
    }

    private static String html(String text, List<Panel> panels) {
        StringBuilder h = new StringBuilder("""
                <!doctype html><html><head><meta charset="utf-8"><title>MambaLens attention matrices</title><style>
                body{font-family:sans-serif;margin:2em;background:#fafafa} td,th{padding:3px;text-align:center;vertical-align:top}
                img{image-rendering:pixelated;border:1px solid #ccc} .small{font-size:80%;color:#555} .tok{font-family:monospace;white-space:pre}
                th.model{border-bottom:2px solid #333}</style></head><body>
                <h1>Attention matrices side by side</h1>
                """);
        h.append("<p class=small>Each picture: |A| for the first tokens of the text (row: query token, column: key token), min-max "
                + "normalised on its own. Layer mean: the mean of |A| over all channels (Mamba: hidden attention α) or heads "
                + "(softmax probabilities). Chosen: the channels or heads with the highest share of |A| off the diagonal; the share "
                + "is under each. Numbers: <code>NAME/layers.npy</code>, <code>NAME/chosen.npy</code>, <code>figure.json</code>.</p>\n");
        h.append("<p>Text: <span class=tok>").append(Images.escapeHtml(text)).append("</span></p>\n");
        for (Panel p : panels) {
            h.append("<p class=small>").append(Images.escapeHtml(p.subject().name())).append(": ").append(p.tokens()).append(" tokens: ");
            for (int t = 0; t < p.tokens(); t++) {
                h.append("<span class=tok style=\"background:#eee;margin:1px\">").append(Images.escapeHtml(p.subject().decode().apply(p.subject().ids()[t])))
                        .append("</span>");
            }
            h.append("</p>\n");
        }
        h.append("<table><tr><th></th>");
        for (Panel p : panels) {
            int K = p.chosen().isEmpty() ? 0 : p.chosen().get(0).length;
            h.append("<th class=model colspan=").append(1 + K).append(">").append(Images.escapeHtml(p.subject().name()))
                    .append(" <span class=small>(").append(p.units()).append(' ').append(p.unit()).append("s per layer)</span></th>");
        }
        h.append("</tr>\n");
        int rows = panels.stream().mapToInt(p -> p.means().size()).max().orElse(0);
        for (int l = 0; l < rows; l++) {
            h.append("<tr><th>layer ").append(l).append("</th>");
            for (Panel p : panels) {
                int K = p.chosen().isEmpty() ? 0 : p.chosen().get(0).length;
                if (l >= p.means().size()) {
                    h.append("<td colspan=").append(1 + K).append("></td>");
                    continue;
                }
                String name = p.subject().name();
                h.append("<td><img src=\"").append(name).append("/layer").append(l).append(".png\" width=140><br><span class=small>mean</span></td>");
                for (int k = 0; k < K; k++) {
                    int u = p.chosen().get(l)[k];
                    h.append("<td><img src=\"").append(name).append("/layer").append(l).append('_').append(p.unit()).append(u)
                            .append(".png\" width=140><br><span class=small>").append(p.unit()).append(' ').append(u)
                            .append(String.format(" · %.2f", p.shares().get(l)[u])).append("</span></td>");
                }
            }
            h.append("</tr>\n");
        }
        return h.append("</table></body></html>\n").toString();
    }
}
