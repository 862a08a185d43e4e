package org.mambalens.xai.render;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.mambalens.engine.io.AtomicWrite;
import org.mambalens.engine.model.LanguageModel;
import org.mambalens.engine.model.ModelFamily;
import org.mambalens.engine.text.BpeTokenizer;
import org.mambalens.engine.trace.AttentionTrace;
import org.mambalens.engine.trace.LayerTrace;
import org.mambalens.engine.trace.LruTrace;
import org.mambalens.engine.trace.MambaLayerTrace;
import org.mambalens.engine.trace.RwkvTrace;
import org.mambalens.engine.trace.SsdTrace;
import org.mambalens.engine.trace.TraceRecorder;
import org.mambalens.xai.attention.AttentionSummary;
import org.mambalens.xai.methods.Explanations;
import org.mambalens.xai.methods.TextExplainer;
import org.mambalens.xai.methods.ImageExplainer.Method;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.function.IntFunction;
import java.util.stream.IntStream;

/**
 * Explains a language model's next-token prediction, or a text classifier's label: the text's tokens
 * coloured by their relevance to the explained position (the last token, or the classifier's read position) (DESIGN §7 with the last row instead of a cls row: raw attention, rollout and
 * attribution — over the hidden attention and Mamba-Attribution for Mamba, over the softmax
 * probabilities and Chefer et al.'s Transformer-Attribution for GPT-NeoX; raw attention and rollout over
 * the implicit attention of Mamba-2 (per head), RWKV and Griffin's RG-LRU (per channel), with Griffin's local
 * attention layers' softmax), each layer's attention matrix,
 * {@code report.html} and {@code explanation.json}.
 */
public final class TextReport {
    private TextReport() {
    }

    /**
     * What is explained: output {@code output} of the model's head at {@code position} (null: the highest-scoring
     * one), named by {@code names}; {@code label} says whether the outputs are a classifier's labels or tokens.
     */
    public record Target(int position, Integer output, IntFunction<String> names, boolean label) {
        /** A language model's next token after the whole text (null: the predicted one). */
        public static Target nextToken(int[] ids, Integer token, IntFunction<String> decode) {
            return new Target(ids.length - 1, token, decode, false);
        }

        /** A next token given as its text, which must be exactly one token, or as {@code #ID}. */
        public static int token(BpeTokenizer tokenizer, String target) {
            if (target.startsWith("#")) {
                try {
                    return Integer.parseInt(target.substring(1).strip());
                } catch (NumberFormatException e) {
                    throw new IllegalArgumentException("--target \"" + target + "\": #ID needs an integer token id");
                }
            }
            int[] ids = tokenizer.encode(target);
            if (ids.length != 1) throw new IllegalArgumentException("--target \"" + target + "\" is " + ids.length + " tokens, not one; give #ID for a token id");
            return ids[0];
        }

        /** A text classifier's label at its read position (null: the predicted one). */
        public static Target label(org.mambalens.engine.model.TextClassifier classifier, int[] ids, Integer label) {
            return new Target(classifier.readPosition(ids), label, k -> classifier.labels().get(k), true);
        }
    }

    /** An explanation and its {@code explanation.json} document, which the explain command writes and the explorer's API answers. */
    public record Explained(ObjectNode json, TextExplainer.Explanation explanation) {
    }

    /**
     * Explains {@code target} for {@code ids}, each token shown as {@code decode} spells it; {@code family} is the model's.
     * The one function that makes the explanation's JSON: the explain command and {@code serve} both call it.
     */
    public static Explained explain(ModelFamily family, LanguageModel lm, int[] ids, IntFunction<String> decode, String text, List<Method> methods,
                                    int startLayer, Target target) {
        TextExplainer.Explanation e = TextExplainer.explain(lm, ids, target.position(), target.output(), methods, startLayer);
        int predicted = e.predicted(), explained = e.explained();
        ObjectNode doc = JsonNodeFactory.instance.objectNode();
        doc.put("text", text);
        doc.put("position", target.position());
        if (target.label()) {
            doc.put("predicted_label", target.names().apply(predicted));
            doc.put("explained_label", target.names().apply(explained));
        } else {
            doc.put("predicted_next_token", predicted);
            doc.put("predicted_next_text", decode.apply(predicted));
            doc.put("explained_token", explained);
        }
        doc.put("model", family.modelType());
        doc.put("model_name", family.name());
        doc.put("start_layer", e.startLayer());
        var tokens = doc.putArray("tokens");
        for (int id : ids) tokens.add(decode.apply(id));
        for (Method method : methods) {
            var row = doc.putArray(method.name());
            for (float r : e.rows().get(method)) row.add(r);
        }
        return new Explained(doc, e);
    }

    /** Explains {@code target} for {@code ids} into {@code out}: {@code report.html}, {@code explanation.json} and the layers' PNGs. */
    public static Path write(Path out, ModelFamily family, LanguageModel lm, int[] ids, IntFunction<String> decode, String text, List<Method> methods, int startLayer,
                             Target target) {
        Images.ensureDirectory(out);
        Explained explained = explain(family, lm, ids, decode, text, methods, startLayer, target);
        ObjectNode doc = explained.json();
        TextExplainer.Explanation e = explained.explanation();
        int L = ids.length, layersCount = lm.layers(), at = target.position();
        int predicted = e.predicted(), next = e.explained(), start = e.startLayer();
        TraceRecorder trace = e.trace();
        List<AttentionSummary> layers = e.layers();
        StringBuilder html = new StringBuilder("""
                <!doctype html><html><head><meta charset="utf-8"><title>MambaLens text explanation</title><style>
                body{font-family:sans-serif;margin:2em;background:#fafafa} .tok{font-family:monospace;white-space:pre;padding:2px 1px;border-radius:3px}
                img{image-rendering:pixelated;border:1px solid #ccc} .small{font-size:80%;color:#555}</style></head><body>
                <h1>MambaLens text explanation</h1>
                """);
        html.append("<p>").append(target.label() ? "Predicted label" : "Predicted next token").append(": <b class=tok>")
                .append(Images.escapeHtml(target.names().apply(predicted))).append("</b>");
        if (next != predicted) html.append("; explained: <b class=tok>").append(Images.escapeHtml(target.names().apply(next))).append("</b>");
        html.append(" <span class=small>(").append(Images.escapeHtml(family.name())).append("; relevance of each token to position ").append(at).append(", layers ").append(start).append("–")
                .append(layersCount - 1).append(")</span></p>\n");
        for (Method method : methods) {
            float[] row = e.rows().get(method);
            // The explained position always holds most of its own row (rollouts add the identity); colour the
            // other tokens on their own scale and outline that one. The JSON keeps the row as computed.
            float[] relevance = Explanations.normalised(row.clone());
            if (at > 0) {
                relevance = java.util.Arrays.copyOf(Explanations.normalised(java.util.Arrays.copyOf(row, at)), L);
                relevance[at] = 1;
            }
            html.append("<h2>").append(ImageReport.title(method)).append("</h2><p>");
            for (int t = 0; t < L; t++) {
                int[] c = Images.ramp(relevance[t]);
                html.append("<span class=tok title=\"").append(String.format("%.4g", row[t])).append("\" style=\"")
                        .append(t == at ? "outline:2px solid #000;" : "").append("background:rgba(")
                        .append(c[0]).append(',').append(c[1]).append(',').append(c[2]).append(",0.55)\">")
                        .append(Images.escapeHtml(decode.apply(ids[t]))).append("</span>");
            }
            html.append("</p>\n");
        }
        List<LayerTrace> recorded = IntStream.range(0, layersCount).mapToObj(trace::layer).toList();
        html.append(recorded.stream().allMatch(t -> t instanceof AttentionTrace) ? "<h2>Attention per layer</h2>" : "<h2>Implicit attention per layer</h2>")
                .append("<p class=small>").append(String.join("; ", recorded.stream().map(TextReport::pictured).distinct().toList()))
                .append(", min-max normalised, first 64 tokens</p><p>");
        for (int l = 0; l < layersCount; l++) {
            float[] abs = layers.get(l).absoluteMean();
            String file = "layer" + l + "_matrix.png";
            Images.write(Images.matrix(abs, L, 64, Math.max(2, 256 / Math.min(L, 64))), out.resolve(file));
            html.append("<img src=\"").append(file).append("\" width=\"200\" title=\"layer ").append(l).append(": ")
                    .append(pictured(recorded.get(l))).append("\"> ");
        }
        html.append("</p></body></html>\n");
        byte[] page = html.toString().getBytes(StandardCharsets.UTF_8);
        AtomicWrite.write(out.resolve("explanation.json"), o -> o.write(new ObjectMapper().writerWithDefaultPrettyPrinter().writeValueAsBytes(doc)));
        Path report = out.resolve("report.html");
        AtomicWrite.write(report, o -> o.write(page));
        return report;
    }

    /** What the picture of a layer of this kind averages. */
    private static String pictured(LayerTrace layer) {
        return switch (layer) {
            case AttentionTrace _ -> "mean softmax probability over heads";
            case SsdTrace _ -> "mean |α| over heads";
            case MambaLayerTrace _, RwkvTrace _, LruTrace _ -> "mean |α| over channels";
        };
    }
}
