package org.mambalens.xai.eval;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.mambalens.engine.io.AtomicWrite;
import org.mambalens.engine.model.TextClassifier;
import org.mambalens.engine.text.BpeTokenizer;
import org.mambalens.xai.data.LabelledTexts;
import org.mambalens.xai.methods.ImageExplainer.Method;
import org.mambalens.xai.methods.TextExplainer;
import org.mambalens.xai.render.Charts;
import org.mambalens.xai.render.Images;

import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Random;
import java.util.SortedMap;
import java.util.stream.IntStream;

/**
 * The seed paper's text tests (its Appendix B) on labelled texts, for every text classifier and method,
 * with a random-order baseline. Each text's true label is explained at the classifier's read position; the
 * text's tokens are then perturbed in 10% steps, the perturbed tokens replaced by the pad token and the
 * logits still read at the text's own last position:
 * <ul>
 *   <li>activation: from all tokens replaced, restore the most relevant first; record the probability of
 *   the true label (higher is better: AUC above random);</li>
 *   <li>pruning: replace the least relevant first; record ‖z_k − z_0‖₂, how far the logits move from the
 *   unperturbed ones (lower is better: AUC below random).</li>
 * </ul>
 * AUCs by the trapezoid rule over the perturbed fraction in [0, 1].
 */
public final class TextEvaluation implements DatasetJob {
    /** A classifier under test, loaded from {@code dir}, with its tokenizer. */
    public record Subject(String name, Path dir, TextClassifier classifier, BpeTokenizer tokenizer) {
    }

    static final int STEPS = 10;
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String[] TESTS = {"activation", "pruning"};

    private final LabelledTexts data;
    private final List<Subject> subjects;
    private final List<Method> methods;
    private final int startLayer;
    private final long seed;

    public TextEvaluation(LabelledTexts data, List<Subject> subjects, List<Method> methods, int startLayer, long seed) {
        this.data = data;
        this.subjects = subjects;
        this.methods = methods;
        this.startLayer = startLayer;
        this.seed = seed;
    }

    /** One text through one classifier: [orders = methods + random][test][step], and whether it was classified right. */
    private record Curves(double[][][] values, boolean correct) {
    }

    /**
     * Evaluates the first {@code limit} texts, {@code threads} at once; writes results.json, results.md, curve PNGs and
     * report.html. Texts already in {@code out}'s journal from an interrupted run with the same config are not done again.
     */
    public Path run(Path out, int limit, int threads, PrintStream progress) {
        return LocalRun.resume(this, config(), "text", out, limit, threads, progress);
    }

    /** What identifies a run: resuming with other models or options would mix incomparable figures. */
    ObjectNode config() {
        ObjectNode c = JSON.createObjectNode();
        ArrayNode models = c.putArray("models");
        for (Subject s : subjects) models.addObject().put("name", s.name()).put("weights", Journal.fingerprint(s.dir()));
        ArrayNode ms = c.putArray("methods");
        methods.forEach(m -> ms.add(m.name()));
        c.put("data", data.file().toAbsolutePath().normalize().toString());
        c.put("start_layer", startLayer);
        c.put("seed", seed);
        c.put("steps", STEPS);
        return c;
    }

    @Override
    public int size() {
        return data.size();
    }

    @Override
    public String unit() {
        return "texts";
    }

    /** Text i through every classifier: per model, whether it was right and each order's curves, test by test. */
    @Override
    public ObjectNode item(int i) {
        ObjectNode result = JSON.createObjectNode().put("text", i), models = result.putObject("models");
        for (Subject subject : subjects) {
            Curves c = evaluate(subject, data.get(i), i);
            ObjectNode model = models.putObject(subject.name()).put("correct", c.correct());
            ArrayNode orders = model.putArray("curves");
            for (double[][] order : c.values()) {
                ArrayNode tests = orders.addArray();
                for (double[] curve : order) {
                    ArrayNode values = tests.addArray();
                    for (double v : curve) values.add(v);
                }
            }
        }
        return result;
    }

    /** A text's curves for one model back from {@link #item}'s result. */
    private Curves curves(JsonNode result, String model) {
        JsonNode m = result.path("models").path(model);
        if (m.isMissingNode()) throw new IllegalArgumentException("text " + result.path("text").asInt() + " has no " + model);
        double[][][] values = new double[methods.size() + 1][TESTS.length][STEPS + 1];
        for (int o = 0; o < values.length; o++) {
            for (int t = 0; t < TESTS.length; t++) for (int k = 0; k <= STEPS; k++) values[o][t][k] = m.path("curves").get(o).get(t).get(k).asDouble();
        }
        return new Curves(values, m.path("correct").asBoolean());
    }

    @Override
    public void close() {
        subjects.forEach(s -> s.classifier().close());
    }

    private Curves evaluate(Subject subject, LabelledTexts.Text text, int index) {
        TextClassifier classifier = subject.classifier();
        int[] ids = subject.tokenizer().encode(text.text());
        if (ids.length == 0) throw new IllegalArgumentException(data.file() + ": text " + index + " encodes to no tokens");
        int at = classifier.readPosition(ids), tokens = at + 1;
        TextExplainer.Explanation e = TextExplainer.explain(classifier.model(), ids, at, text.label(), methods, startLayer);
        List<int[]> orders = new ArrayList<>();                        // most relevant first
        for (Method m : methods) orders.add(mostRelevantFirst(e.rows().get(m), tokens));
        int[] shuffled = IntStream.range(0, tokens).toArray();
        Random random = new Random(seed * 1_000_003L + index);
        for (int k = tokens - 1; k > 0; k--) {
            int j = random.nextInt(k + 1), t = shuffled[k];
            shuffled[k] = shuffled[j];
            shuffled[j] = t;
        }
        orders.add(shuffled);
        // Perturbing none or all of the tokens gives the same input whatever the order: run those two once.
        int[] allPad = ids.clone();
        Arrays.fill(allPad, 0, tokens, classifier.padTokenId());
        float[] whole = classifier.logitsAt(ids, at), none = classifier.logitsAt(allPad, at);
        double[][][] values = new double[orders.size()][2][STEPS + 1];
        for (int o = 0; o < orders.size(); o++) {
            int[] order = orders.get(o);
            for (int k = 0; k <= STEPS; k++) {
                int count = (int) Math.round((double) k * tokens / STEPS);
                float[] activated = count == 0 ? none : count == tokens ? whole : null;
                if (activated == null) {
                    int[] restored = ids.clone();                      // activation: only the `count` most relevant stay
                    for (int r = count; r < tokens; r++) restored[order[r]] = classifier.padTokenId();
                    activated = classifier.logitsAt(restored, at);
                }
                values[o][0][k] = softmax(activated)[text.label()];
                float[] prunedLogits = count == 0 ? whole : count == tokens ? none : null;
                if (prunedLogits == null) {
                    int[] pruned = ids.clone();                        // pruning: the `count` least relevant go
                    for (int r = 0; r < count; r++) pruned[order[tokens - 1 - r]] = classifier.padTokenId();
                    prunedLogits = classifier.logitsAt(pruned, at);
                }
                values[o][1][k] = distance(prunedLogits, e.logits());
            }
        }
        return new Curves(values, e.predicted() == text.label());
    }

    static int[] mostRelevantFirst(float[] relevance, int tokens) {
        return IntStream.range(0, tokens).boxed().sorted(Comparator.comparingDouble((Integer t) -> -relevance[t]).thenComparingInt(t -> t))
                .mapToInt(Integer::intValue).toArray();
    }

    static double[] softmax(float[] logits) {
        double max = Double.NEGATIVE_INFINITY, sum = 0;
        for (float v : logits) max = Math.max(max, v);
        double[] p = new double[logits.length];
        for (int k = 0; k < p.length; k++) sum += p[k] = Math.exp(logits[k] - max);
        for (int k = 0; k < p.length; k++) p[k] /= sum;
        return p;
    }

    static double distance(float[] a, float[] b) {
        double sum = 0;
        for (int k = 0; k < a.length; k++) sum += (double) (a[k] - b[k]) * (a[k] - b[k]);
        return Math.sqrt(sum);
    }

    /** Trapezoid rule over the fractions k / STEPS. */
    static double auc(double[] curve) {
        double area = 0;
        for (int k = 1; k < curve.length; k++) area += (curve[k] + curve[k - 1]) / (2.0 * STEPS);
        return area;
    }

    /** The data file as the user would name it: relative to the working directory when inside it. */
    private String dataName() {
        Path here = Path.of("").toAbsolutePath(), file = data.file().toAbsolutePath().normalize();
        return file.startsWith(here) ? here.relativize(file).toString() : file.toString();
    }

    /** results.json, results.md, the curve PNGs and report.html from the texts' results. */
    @Override
    public Path write(Path out, SortedMap<Integer, JsonNode> results) {
        Images.ensureDirectory(out);
        int n = results.size();
        if (n == 0) throw new IllegalArgumentException("no texts were evaluated");
        ObjectNode doc = JSON.createObjectNode(), models = doc.putObject("models"), random = doc.putObject("random");
        doc.put("texts", n);
        doc.put("data", dataName());
        doc.put("explained", "the true label, at the classifier's read position");
        doc.put("filler", "the pad token");
        var fractions = doc.putArray("fractions");
        for (int k = 0; k <= STEPS; k++) fractions.add((double) k / STEPS);
        var accuracy = doc.putObject("accuracy");
        StringBuilder md = new StringBuilder("# Text perturbation tests\n\n").append(n).append(" texts of `").append(dataName())
                .append("`; the true label explained; tokens replaced by the pad token in 10% steps.\n\n")
                .append("| model | method | activation AUC ↑ | pruning AUC ↓ |\n|---|---|---|---|\n");
        StringBuilder html = new StringBuilder("<!doctype html><html><head><meta charset=\"utf-8\"><title>MambaLens text evaluation</title>"
                + "<style>body{font-family:sans-serif;margin:2em} td,th{padding:2px 10px}</style></head><body><h1>Text perturbation tests</h1>\n");
        for (int s = 0; s < subjects.size(); s++) {
            String name = subjects.get(s).name();
            int orders = methods.size() + 1;
            double[][][] mean = new double[orders][2][STEPS + 1];
            int correct = 0;
            for (JsonNode result : results.values()) {
                Curves text = curves(result, name);
                if (text.correct()) correct++;
                for (int o = 0; o < orders; o++) for (int t = 0; t < 2; t++) for (int k = 0; k <= STEPS; k++) mean[o][t][k] += text.values()[o][t][k] / n;
            }
            accuracy.put(name, (double) correct / n);
            ObjectNode model = models.putObject(name);
            for (int o = 0; o < orders; o++) {
                String label = o < methods.size() ? methods.get(o).name() : "random";
                ObjectNode node = o < methods.size() ? model.putObject(label) : random.putObject(name);
                for (int t = 0; t < 2; t++) {
                    node.put(TESTS[t] + "_auc", auc(mean[o][t]));
                    var curve = node.putArray(TESTS[t] + "_curve");
                    for (double v : mean[o][t]) curve.add(v);
                }
                md.append(String.format("| %s | %s | %.4f | %.4f |%n", name, label, auc(mean[o][0]), auc(mean[o][1])));
            }
            html.append("<h2>").append(Images.escapeHtml(name)).append(String.format(" (accuracy %.3f)</h2><p>", (double) correct / n));
            for (int t = 0; t < 2; t++) {
                double[] x = new double[STEPS + 1];
                for (int k = 0; k <= STEPS; k++) x[k] = (double) k / STEPS;
                List<double[]> series = new ArrayList<>();
                List<Boolean> dashed = new ArrayList<>();
                double yMax = t == 0 ? 1 : 0;
                for (int o = 0; o < orders; o++) {
                    series.add(mean[o][t]);
                    dashed.add(o == methods.size());
                    for (double v : mean[o][t]) yMax = Math.max(yMax, v);
                }
                String file = "curves_" + name + "_" + TESTS[t] + ".png";
                Images.write(Charts.lines(x, series, dashed, 1, yMax * 1.05, 420, 300), out.resolve(file));
                html.append("<figure style=\"display:inline-block\"><img src=\"").append(file).append("\"><figcaption>").append(TESTS[t])
                        .append(t == 0 ? ": P(true label) vs fraction restored" : String.format(": ‖Δlogits‖ vs fraction removed (y up to %.2f)", yMax * 1.05))
                        .append("</figcaption></figure> ");
            }
            html.append("</p><p>");
            for (int o = 0; o < orders; o++) {
                html.append("<span style=\"color:").append(Charts.COLOURS[o % Charts.COLOURS.length]).append("\">■ ")
                        .append(o < methods.size() ? methods.get(o).name() : "random (dashed)").append("</span> ");
            }
            html.append("</p>\n");
        }
        html.append("<pre>").append(Images.escapeHtml(md.toString())).append("</pre></body></html>\n");
        Path json = out.resolve("results.json");
        AtomicWrite.write(json, o -> o.write(JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(doc)));
        AtomicWrite.write(out.resolve("results.md"), o -> o.write(md.toString().getBytes(StandardCharsets.UTF_8)));
        AtomicWrite.write(out.resolve("report.html"), o -> o.write(html.toString().getBytes(StandardCharsets.UTF_8)));
        return json;
    }
}
