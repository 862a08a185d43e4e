package org.mambalens.spark;

import org.apache.spark.SparkFiles;
import org.apache.spark.api.java.JavaSparkContext;
import org.mambalens.engine.io.DirectoryTree;

import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.zip.Deflater;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;

/**
 * A job's inputs copied to every executor by Spark: a file with SparkContext.addFile, a directory (a model, a
 * dataset) as a zip with addArchive, since addFile takes a local directory only on a local master. On an executor
 * both are found by their file name under SparkFiles' root, the archive unpacked into a directory of that name.
 */
final class Shipment implements AutoCloseable {
    private final Path zips;

    private Shipment(Path zips) {
        this.zips = zips;
    }

    /** Ships {@code inputs} (absolute or relative to the working directory) to the executors of {@code sc}. */
    static Shipment of(JavaSparkContext sc, List<Path> inputs) {
        try {
            Shipment shipment = new Shipment(Files.createTempDirectory("mambalens-ship"));
            for (Path input : inputs) {
                Path absolute = input.toAbsolutePath().normalize();
                if (!Files.exists(absolute)) throw new IllegalArgumentException(input + ": no such file or directory");
                if (Files.isDirectory(absolute)) {
                    String name = absolute.getFileName().toString();
                    sc.sc().addArchive(shipment.zip(absolute).toUri() + "#" + name);
                } else {
                    sc.addFile(absolute.toString());
                }
            }
            return shipment;
        } catch (IOException e) {
            throw new UncheckedIOException("shipping the job's inputs: " + e.getMessage(), e);
        }
    }

    /** Where an executor has its copy of {@code input}. */
    static Path located(Path input) {
        return Path.of(SparkFiles.get(input.toAbsolutePath().normalize().getFileName().toString()));
    }

    /** The directory's files (not its subdirectories: models and datasets are flat) in a zip, stored: weights hardly compress. */
    private Path zip(Path dir) throws IOException {
        Path zip = zips.resolve(dir.getFileName() + ".zip");
        try (OutputStream file = Files.newOutputStream(zip); ZipOutputStream out = new ZipOutputStream(file);
             var files = Files.list(dir)) {
            out.setLevel(Deflater.NO_COMPRESSION);
            for (Path f : files.filter(Files::isRegularFile).sorted().toList()) {
                out.putNextEntry(new ZipEntry(f.getFileName().toString()));
                Files.copy(f, out);
                out.closeEntry();
            }
        }
        return zip;
    }

    /** Deletes the zips once the job is done (the executors have fetched them). */
    @Override
    public void close() {
        DirectoryTree.deleteQuietly(zips);   // a temporary directory left behind is no reason to fail a finished job
    }
}
