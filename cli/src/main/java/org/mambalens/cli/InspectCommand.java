package org.mambalens.cli;

import org.mambalens.engine.io.Checkpoint;
import org.mambalens.engine.io.SafetensorsFile;
import org.mambalens.engine.io.TensorInfo;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

import java.nio.file.Path;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Callable;

@Command(name = "inspect", mixinStandardHelpOptions = true,
        description = "List the tensors of a safetensors file or checkpoint directory: dtype, shape, parameter count, metadata.")
final class InspectCommand implements Callable<Integer> {
    @Parameters(paramLabel = "FILE_OR_DIR", description = "A .safetensors file, or a directory with model.safetensors or model.safetensors.index.json.")
    Path path;

    @Override
    public Integer call() {
        try (Checkpoint ckpt = Checkpoint.open(path)) {
            Map<String, Long> byType = new TreeMap<>();
            int width = ckpt.names().stream().mapToInt(String::length).max().orElse(4);
            for (SafetensorsFile f : ckpt.files()) {
                System.out.println("# " + f.path() + " (" + f.tensors().size() + " tensors)");
                f.metadata().forEach((k, v) -> System.out.println("#   metadata " + k + " = " + v));
                for (TensorInfo t : f.tensors().values()) {
                    System.out.printf("%-" + width + "s  %-5s %s%n", t.name(), t.dtype(), t.shapeString());
                    byType.merge(t.dtype().name(), t.elements(), Long::sum);
                }
            }
            System.out.printf("%d tensors, %,d parameters%s%n", ckpt.names().size(), ckpt.parameterCount(),
                    byType.size() > 1 ? " " + byType : " (" + byType.keySet().stream().findFirst().orElse("none") + ")");
        }
        return 0;
    }
}
