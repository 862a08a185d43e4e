package org.mambalens.weights;

import com.code_intelligence.jazzer.junit.FuzzTest;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;

import static org.mambalens.engine.fuzz.Fuzzing.file;
import static org.mambalens.engine.fuzz.Fuzzing.loadsOrRefusesInOneLine;

/** The .pth reader under Jazzer (see EngineLoadersFuzzTest): a whole torch.save zip, and a pickle inside a well-formed one. */
class PthFuzzTest {
    @FuzzTest
    void pth(byte[] data) {
        Path f = file("fuzz.pth", data);
        loadsOrRefusesInOneLine(() -> PthReader.read(f));
    }

    /** Most mutations of a zip break the zip; this one reaches the unpickler with every input. */
    @FuzzTest
    void pickle(byte[] data) throws IOException {
        ByteArrayOutputStream zip = new ByteArrayOutputStream();
        try (ZipOutputStream out = new ZipOutputStream(zip)) {
            out.putNextEntry(new ZipEntry("archive/data.pkl"));
            out.write(data);
            out.putNextEntry(new ZipEntry("archive/byteorder"));
            out.write("little".getBytes(StandardCharsets.US_ASCII));
            out.putNextEntry(new ZipEntry("archive/data/0"));
            out.write(new byte[64]);
        }
        Path f = file("pickle.pth", zip.toByteArray());
        loadsOrRefusesInOneLine(() -> PthReader.read(f));
    }
}
