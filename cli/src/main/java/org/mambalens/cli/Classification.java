package org.mambalens.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.mambalens.engine.io.AtomicWrite;
import org.mambalens.engine.io.Npy;
import org.mambalens.engine.text.Sampler;
import org.mambalens.xai.eval.DatasetJob;

import java.nio.file.Path;
import java.util.SortedMap;
import java.util.function.IntFunction;
import java.util.function.IntUnaryOperator;

/**
 * A classifier's accuracy on a labelled dataset (classify --fashion-mnist or --texts), item by item: each item's
 * logits and prediction, then the accuracy, printed and (given a directory) written as results.json, and the
 * logits as NPY [N, classes] when asked for.
 */
final class Classification implements DatasetJob {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final String model;
    private final String dataset;
    private final String unit;
    private final int size;
    private final IntFunction<float[]> logits;
    private final IntUnaryOperator label;
    private final Runnable closer;
    private final Path npy;

    /**
     * @param dataset what the items are, as the accuracy line names them ("Fashion-MNIST test images")
     * @param logits  item i's logits, computed on the calling thread
     * @param label   item i's true label
     * @param closer  releases the classifier
     * @param npy     where the logits go, or null
     */
    Classification(String model, String dataset, String unit, int size, IntFunction<float[]> logits, IntUnaryOperator label, Runnable closer, Path npy) {
        this.model = model;
        this.dataset = dataset;
        this.unit = unit;
        this.size = size;
        this.logits = logits;
        this.label = label;
        this.closer = closer;
        this.npy = npy;
    }

    @Override
    public int size() {
        return size;
    }

    @Override
    public String unit() {
        return unit;
    }

    @Override
    public ObjectNode item(int i) {
        float[] z = logits.apply(i);
        ObjectNode result = JSON.createObjectNode().put("item", i).put("label", label.applyAsInt(i)).put("predicted", Sampler.argmax(z));
        ArrayNode values = result.putArray("logits");
        for (float v : z) values.add(v);
        return result;
    }

    /** Prints the accuracy line; writes the logits to the NPY file if one was given, and results.json into {@code out} unless it is null. */
    @Override
    public Path write(Path out, SortedMap<Integer, JsonNode> results) {
        int n = results.size(), classes = results.isEmpty() ? 0 : results.firstEntry().getValue().path("logits").size(), correct = 0, row = 0;
        if (n == 0) throw new IllegalArgumentException("no " + unit + " were classified");
        float[] all = new float[n * classes];
        for (JsonNode r : results.values()) {
            if (r.path("predicted").asInt() == r.path("label").asInt()) correct++;
            for (JsonNode v : r.path("logits")) all[row++] = v.floatValue();
        }
        double accuracy = correct / (double) n;
        System.out.printf("%s: accuracy %.4f on %d %s%n", model, accuracy, n, dataset);
        if (npy != null) Npy.writeFloat32(npy, all, n, classes);
        if (out == null) return null;
        ObjectNode doc = JSON.createObjectNode().put("model", model).put("dataset", dataset).put(unit, n).put("accuracy", accuracy);
        Path json = out.resolve("results.json");
        AtomicWrite.write(json, o -> o.write(JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(doc)));
        return json;
    }

    @Override
    public void close() {
        closer.run();
    }
}
