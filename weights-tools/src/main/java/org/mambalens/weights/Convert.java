package org.mambalens.weights;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.mambalens.engine.io.AtomicWrite;
import org.mambalens.engine.io.SafetensorsWriter;

import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;

/**
 * {@code .pth} → {@code model.safetensors} (+ {@code config.json} where the key names say which model
 * it is). Both files are written atomically, the config only after the weights.
 */
public final class Convert {
    /** What a conversion wrote. */
    public record Result(Path weights, Optional<Path> config, int tensors, long parameters) {
    }

    private Convert() {
    }

    public static Result pthToSafetensors(Path pth, Path outDir) {
        Map<String, PthReader.TensorData> tensors = PthReader.read(pth);
        SafetensorsWriter writer = new SafetensorsWriter().metadata("format", "pt").metadata("converted_from", pth.getFileName().toString());
        long parameters = 0;
        for (var e : tensors.entrySet()) {
            writer.add(e.getKey(), e.getValue().dtype(), e.getValue().shape(), e.getValue().bytes());
            long n = 1;
            for (long d : e.getValue().shape()) n *= d;
            parameters += n;
        }
        Path weights = outDir.resolve("model.safetensors");
        writer.write(weights);
        Optional<ObjectNode> config = VimConfigGuess.from(tensors);
        Path configFile = outDir.resolve("config.json");
        config.ifPresent(c -> AtomicWrite.write(configFile, out -> out.write(
                new ObjectMapper().writerWithDefaultPrettyPrinter().writeValueAsBytes(c))));
        return new Result(weights, config.map(c -> configFile), tensors.size(), parameters);
    }
}
