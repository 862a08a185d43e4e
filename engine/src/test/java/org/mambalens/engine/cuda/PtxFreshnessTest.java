package org.mambalens.engine.cuda;

import org.junit.jupiter.api.Test;
import org.mambalens.engine.Fixtures;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.regex.Pattern;

import static org.assertj.core.api.Assertions.assertThat;

/** The PTX shipped in the jar was built from the CUDA source as it is now (scripts/build-ptx.sh), and holds every kernel. */
class PtxFreshnessTest {
    static final Path SOURCE = Fixtures.repository().resolve("engine/src/main/cuda/mambalens.cu");

    @Test
    void ptxWasBuiltFromTheCurrentSource() throws IOException, NoSuchAlgorithmException {
        String hash = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(SOURCE)));
        String firstLine = Gpu.ptx().lines().findFirst().orElse("");
        assertThat(firstLine).as("the PTX is older than %s: run scripts/build-ptx.sh", SOURCE).isEqualTo("// source-sha256: " + hash);
    }

    @Test
    void everyKernelOfTheSourceIsInThePtx() throws IOException {
        String ptx = Gpu.ptx();
        var kernels = Pattern.compile("(?m)^KERNEL void (\\w+)\\(|^(?:SCAN|SUMMARY)_KERNEL\\((\\w+),").matcher(Files.readString(SOURCE));
        int found = 0;
        while (kernels.find()) {
            String name = kernels.group(1) != null ? kernels.group(1) : kernels.group(2);
            assertThat(ptx).as(name).contains(".entry " + name + "(");
            found++;
        }
        assertThat(found).isGreaterThanOrEqualTo(13);
    }
}
