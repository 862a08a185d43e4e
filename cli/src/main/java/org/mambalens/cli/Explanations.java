package org.mambalens.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.mambalens.engine.backend.Precision;
import org.mambalens.engine.io.AtomicWrite;
import org.mambalens.engine.model.Device;
import org.mambalens.engine.model.Models;
import org.mambalens.xai.data.ImagePreprocessor;
import org.mambalens.xai.eval.DatasetJob;
import org.mambalens.xai.methods.ImageExplainer.Method;
import org.mambalens.xai.render.ImageReport;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SortedMap;
import java.util.function.UnaryOperator;

/**
 * explain --inputs: one image report per listed image, in DIR/NNNN-NAME/ (written where the item runs: on a
 * cluster, DIR must be a shared path), and DIR/results.json listing the reports.
 */
final class Explanations implements DatasetJob {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final List<ImageReport.Subject> subjects;
    private final Job job;

    /** The explanations as values: what runs here, or on every Spark executor. */
    record Job(List<String> models, List<String> images, List<Method> methods, int startLayer, String target, Device device, Precision precision,
               String out) implements JobSpec {
        @Override
        public List<Path> inputs() {
            List<Path> inputs = new ArrayList<>(models.stream().map(Path::of).toList());
            images.forEach(i -> inputs.add(Path.of(i)));
            return inputs;
        }

        @Override
        public Job relocated(UnaryOperator<Path> located) {
            UnaryOperator<String> relocate = p -> located.apply(Path.of(p)).toString();
            return new Job(models.stream().map(relocate).toList(), images.stream().map(relocate).toList(), methods, startLayer, target, device, precision, out);
        }

        @Override
        public Explanations open() {
            List<ImageReport.Subject> subjects = new ArrayList<>();
            try {
                for (String m : models) {
                    Path dir = Path.of(m);
                    subjects.add(new ImageReport.Subject(dir.getFileName().toString(), dir, Models.loadImageClassifier(dir, device, precision)));
                }
                return new Explanations(subjects, this);
            } catch (RuntimeException e) {
                subjects.forEach(s -> s.model().close());
                throw e;
            }
        }
    }

    private Explanations(List<ImageReport.Subject> subjects, Job job) {
        this.subjects = subjects;
        this.job = job;
    }

    @Override
    public int size() {
        return job.images().size();
    }

    @Override
    public String unit() {
        return "inputs";
    }

    /** Image i's report, in a directory named by its position in the list and its file name. */
    @Override
    public ObjectNode item(int i) {
        Path file = Path.of(job.images().get(i));
        ImagePreprocessor.Decoded img = ImagePreprocessor.decode(file);
        if (img.height() != img.width()) throw new IllegalArgumentException(file + " is " + img.width() + " × " + img.height() + ", not square");
        String name = file.getFileName().toString();
        String dir = String.format("%04d-%s", i, name.contains(".") ? name.substring(0, name.lastIndexOf('.')) : name);
        ImageReport.write(Path.of(job.out()).resolve(dir), img.luma(), img.width(), name, subjects, job.methods(), job.startLayer(), job.target());
        return JSON.createObjectNode().put("item", i).put("input", name).put("report", dir + "/report.html");
    }

    /** results.json: the reports in list order. */
    @Override
    public Path write(Path out, SortedMap<Integer, JsonNode> results) {
        ObjectNode doc = JSON.createObjectNode().put("inputs", results.size());
        var reports = doc.putArray("reports");
        results.values().forEach(reports::add);
        Path json = out.resolve("results.json");
        AtomicWrite.write(json, o -> o.write(JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(doc)));
        return json;
    }

    @Override
    public void close() {
        subjects.forEach(s -> s.model().close());
    }
}
