package org.mambalens.architecture;

import com.tngtech.archunit.base.DescribedPredicate;
import com.tngtech.archunit.core.domain.JavaClass;
import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ImportOption;
import com.tngtech.archunit.junit.AnalyzeClasses;
import com.tngtech.archunit.junit.ArchTest;
import com.tngtech.archunit.lang.ArchRule;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;

import static com.tngtech.archunit.base.DescribedPredicate.alwaysTrue;
import static com.tngtech.archunit.base.DescribedPredicate.not;
import static com.tngtech.archunit.core.domain.JavaClass.Predicates.resideInAPackage;
import static com.tngtech.archunit.core.domain.JavaClass.Predicates.resideInAnyPackage;
import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;
import static com.tngtech.archunit.library.dependencies.SlicesRuleDefinition.slices;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * The module and package rules of README's architecture section, checked on the main classes of every module
 * (tests may reach further: a kernel test builds weights off-heap, a GPU test calls CUDA kernels directly).
 */
@AnalyzeClasses(packages = "org.mambalens", importOptions = ImportOption.DoNotIncludeTests.class)
class ArchitectureTest {
    private static final String ENGINE = "org.mambalens.engine..", XAI = "org.mambalens.xai..", CLI = "org.mambalens.cli..",
            WEIGHTS = "org.mambalens.weights..", BENCHMARKS = "org.mambalens.benchmarks..", SPARK = "org.mambalens.spark..";
    private static final String KERNELS = "org.mambalens.engine.kernels..", CUDA = "org.mambalens.engine.cuda..",
            MODEL = "org.mambalens.engine.model..", VECTOR_API = "jdk.incubator.vector..", FFM = "java.lang.foreign..";

    private static final String FOREIGN_MEMORY = "foreign memory", GPU = "GPU through the engine's API",
            MODEL_FAMILIES = "model families over the backend", CYCLES = "engine package cycles";

    // ==================================================================================================
    // Known violations. Each rule passes over the classes listed under it and fails on any other. They go
    // with the backend step (issue 17: one forward pass per family over a Backend, the GPU hidden attention
    // through it): the lead deletes an entry as its class is rewritten or removed, and a rule's line once
    // its set is empty. everyKnownViolationIsStillOne fails on an entry left behind.
    // ==================================================================================================
    static final Map<String, Set<String>> KNOWN_VIOLATIONS = Map.of(
            FOREIGN_MEMORY, Set.of(
                    "org.mambalens.benchmarks.MatMulBenchmark"),        // an off-heap weight, as a mapped checkpoint's: the backend's buffer once there is one
            GPU, Set.of(
                    "org.mambalens.benchmarks.CudaBenchmark",           // CUDA kernels called one by one
                    "org.mambalens.benchmarks.KernelProfile"),          // a profiler's range (Gpu.profiled) around a model's work
            MODEL_FAMILIES, Set.of(
                    "org.mambalens.engine.model.Device",
                    "org.mambalens.engine.model.Models"),             // Device opens the GPU and Models makes its CudaBackend: loaders, not forward passes

            // Not the backend step's: DType is the tensors' element type but lives in io, so tensor ⇄ io. Moving it
            // into tensor ends the cycle; it is imported by new backend code too, so that waits until the step lands.
            CYCLES, Set.of("org.mambalens.engine.io.DType"));

    /** Each rule with exceptions, made for a given set of excused classes (for the cycles: classes whose users do not count). */
    private static final Map<String, Function<Set<String>, ArchRule>> RULES = Map.of(
            FOREIGN_MEMORY, ArchitectureTest::foreignMemory,
            GPU, ArchitectureTest::gpuThroughTheEngine,
            MODEL_FAMILIES, ArchitectureTest::modelFamilies,
            CYCLES, ArchitectureTest::engineCycles);

    // ---- modules ----

    @ArchTest
    static final ArchRule engineDependsOnNoOtherModule = noClasses().that().resideInAPackage(ENGINE)
            .should().dependOnClassesThat().resideInAnyPackage(XAI, CLI, WEIGHTS, BENCHMARKS, SPARK)
            .because("the engine is the library under everything else: models, a backend and the trace, usable without explanations, a command line or converters");

    @ArchTest
    static final ArchRule xaiDependsOnlyOnTheEngine = noClasses().that().resideInAPackage(XAI)
            .should().dependOnClassesThat().resideInAnyPackage(CLI, WEIGHTS, BENCHMARKS, SPARK)
            .because("explanations are a library too: the CLI and benchmarks call them, never the other way");

    @ArchTest
    static final ArchRule weightsToolsUseOnlyCheckpointsAndTensors = noClasses().that().resideInAPackage(WEIGHTS)
            .should().dependOnClassesThat(resideInAPackage("org.mambalens..")
                    .and(not(resideInAnyPackage(WEIGHTS, "org.mambalens.engine.io..", "org.mambalens.engine.tensor.."))))
            .because("weights-tools converts formats with the engine's safetensors writer and never runs what it parses");

    @ArchTest
    static final ArchRule nothingDependsOnTheSparkModule = noClasses().that().resideOutsideOfPackage(SPARK)
            .should().dependOnClassesThat().resideInAPackage(SPARK)
            .because("the spark module sits on top (it implements the CLI's SparkRunner): the CLI finds it through ServiceLoader when --spark is "
                    + "given, so the plain CLI jar carries no Spark");

    // ---- packages ----

    @ArchTest
    static final ArchRule vectorApiOnlyInKernels = noClasses().that().resideOutsideOfPackage(KERNELS)
            .should().dependOnClassesThat().resideInAPackage(VECTOR_API)
            .because("every SIMD loop is a kernel with a scalar twin that the tests compare it with, and the incubator API stays in one package");

    @ArchTest
    static final ArchRule foreignMemoryOnlyInTheLowLevels = foreignMemory(KNOWN_VIOLATIONS.get(FOREIGN_MEMORY));

    @ArchTest
    static final ArchRule gpuOnlyThroughTheEnginesApi = gpuThroughTheEngine(KNOWN_VIOLATIONS.get(GPU));

    @ArchTest
    static final ArchRule modelFamiliesCallKernelsThroughTheBackend = modelFamilies(KNOWN_VIOLATIONS.get(MODEL_FAMILIES));

    @ArchTest
    static final ArchRule engineTopLevelPackagesHaveNoCycles = engineCycles(KNOWN_VIOLATIONS.get(CYCLES));

    @ArchTest
    static void everyKnownViolationIsStillOne(JavaClasses classes) {
        List<String> stale = new ArrayList<>();
        KNOWN_VIOLATIONS.forEach((rule, excused) -> {
            for (String name : excused) {
                Set<String> others = new HashSet<>(excused);
                others.remove(name);
                if (!classes.contain(name)) stale.add(name + " does not exist ('" + rule + "')");
                else if (!RULES.get(rule).apply(others).evaluate(classes).hasViolation()) stale.add(name + " no longer breaks '" + rule + "'");
            }
        });
        assertThat(stale).as("entries of KNOWN_VIOLATIONS to delete").isEmpty();
    }

    private static ArchRule foreignMemory(Set<String> excused) {
        return noClasses().that().resideOutsideOfPackages(CUDA, "org.mambalens.engine.backend..", "org.mambalens.engine.io..",
                        "org.mambalens.engine.tensor..", KERNELS).and(not(listedIn(excused)))
                .should().dependOnClassesThat().resideInAPackage(FFM)
                .because("native memory and downcalls belong to the low levels: mapped checkpoints (io, tensor), the kernels that read them, and the backends");
    }

    private static ArchRule gpuThroughTheEngine(Set<String> excused) {
        return noClasses().that().resideInAnyPackage(XAI, CLI, BENCHMARKS, SPARK).and(not(listedIn(excused)))
                .should().dependOnClassesThat().resideInAPackage(CUDA)
                .because("engine.cuda is the CUDA backend's implementation: other modules reach the GPU through the engine's API (a Device when loading, the Backend)");
    }

    private static ArchRule modelFamilies(Set<String> excused) {
        return noClasses().that().resideInAPackage(MODEL).and(not(listedIn(excused)))
                .should().dependOnClassesThat().resideInAnyPackage(VECTOR_API, CUDA)
                .because("each family's forward pass is written once and calls kernels through the backend, so that it runs on either");
    }

    private static ArchRule engineCycles(Set<String> excused) {
        return slices().matching("org.mambalens.engine.(*)..").should().beFreeOfCycles()
                .ignoreDependency(alwaysTrue(), listedIn(excused))
                .because("engine's packages build on one another one way (io and tensor, then kernels, the backends, text and trace, model on top), so each can be read and tested without those above it");
    }

    /** The named classes and the classes nested in them. */
    private static DescribedPredicate<JavaClass> listedIn(Set<String> names) {
        return DescribedPredicate.describe("listed in KNOWN_VIOLATIONS", c -> names.contains(c.getName().split("\\$")[0]));
    }
}
