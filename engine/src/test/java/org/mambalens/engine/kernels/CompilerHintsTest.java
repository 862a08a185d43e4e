package org.mambalens.engine.kernels;

import org.junit.jupiter.api.Test;

import java.lang.management.ManagementFactory;
import java.lang.reflect.Method;
import java.util.Arrays;
import javax.management.ObjectName;

import static org.assertj.core.api.Assertions.assertThat;

class CompilerHintsTest {
    /** A renamed kernel would silently drop out of the directive: each name must be a method of this package. */
    @Test
    void everyLoopNamedInTheDirectiveExists() throws Exception {
        for (String name : java.util.stream.Stream.concat(CompilerHints.OWN_COMPILATION.stream(), CompilerHints.ALWAYS_INLINED.stream()).toList()) {
            String[] parts = name.split("\\.");
            Class<?> owner = Class.forName(CompilerHints.class.getPackageName() + "." + parts[0]);
            assertThat(Arrays.stream(owner.getDeclaredMethods()).map(Method::getName)).as(name).contains(parts[1]);
        }
        assertThat(CompilerHints.directive()).contains("\"-org/mambalens/engine/kernels/Elementwise.softplus\"", "\"+org/mambalens/engine/kernels/Vectors.load\"", "c2: { inline: [");
    }

    @Test
    void theJvmTakesTheDirective() throws Exception {
        assertThat(CompilerHints.install()).isTrue();
        Object printed = ManagementFactory.getPlatformMBeanServer().invoke(new ObjectName("com.sun.management:type=DiagnosticCommand"),
                "compilerDirectivesPrint", new Object[]{new String[0]}, new String[]{String[].class.getName()});
        assertThat(String.valueOf(printed)).contains("-org/mambalens/engine/kernels/Elementwise.expOfScaledTimes");
    }
}
