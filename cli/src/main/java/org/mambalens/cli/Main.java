package org.mambalens.cli;

import org.mambalens.engine.io.AtomicWrite;
import org.mambalens.engine.io.CheckpointException;
import org.mambalens.engine.kernels.ThreadCount;
import picocli.CommandLine;
import picocli.CommandLine.Command;

import java.io.IOException;
import java.nio.file.FileSystemException;

/** {@code ./mambalens}: the command-line entry point. Commands are thin: parse, call the library, print. */
@Command(name = "mambalens", mixinStandardHelpOptions = true, version = "MambaLens 0.1.0",
        description = "Pure-Java inference and explainability for Mamba and other attention-free sequence models.",
        subcommands = {InspectCommand.class, ForwardCommand.class, GenerateCommand.class, ClassifyCommand.class, AttentionCommand.class,
                ExplainCommand.class, CompareAttentionCommand.class, EvaluateCommand.class, EvaluateTextCommand.class,
                GradientCommand.class, ConvertCommand.class, VerifyCommand.class, ServeCommand.class,
                CommandLine.HelpCommand.class})
public final class Main {
    public static void main(String[] args) {
        System.exit(run(args));
    }

    /** Runs a command line and returns its exit code: 0 ok, 1 failed, 2 bad usage. */
    public static int run(String... args) {
        CommandLine cli = new CommandLine(new Main()).setCaseInsensitiveEnumValuesAllowed(true);
        try {
            ThreadCount.configured();
        } catch (IllegalArgumentException e) {
            cli.getErr().println("mambalens: " + e.getMessage());
            return 2;
        }
        cli.setParameterExceptionHandler((e, given) -> {
            CommandLine cmd = e.getCommandLine();
            cmd.getErr().println("mambalens " + cmd.getCommandName() + ": " + firstLine(e.getMessage()) + " (see " + cmd.getCommandSpec().qualifiedName() + " --help)");
            return 2;
        });
        cli.setExecutionExceptionHandler((e, cmd, parsed) -> {
            // One clear line, no stack trace: every error the engine raises names the file or argument.
            cmd.getErr().println("mambalens " + cmd.getCommandName() + ": " + oneLine(e));
            if (Boolean.getBoolean("mambalens.debug")) e.printStackTrace(cmd.getErr());
            return 1;
        });
        return cli.execute(args);
    }

    /**
     * The one line an error is reported in, as every command and the explorer's API say it. The project's own
     * errors (a file or an argument that cannot be used) say what is wrong themselves; the Java platform's are put
     * in words; anything else is a defect of MambaLens and said to be one.
     */
    public static String oneLine(Throwable e) {
        // Wrappers (a worker thread's failure, an unchecked I/O error) only repeat their cause.
        while (e.getCause() != null && (e.getMessage() == null || e.getMessage().equals(e.getCause().toString()))) e = e.getCause();
        if (e instanceof CheckpointException || e.getClass() == IllegalArgumentException.class || e.getClass() == UnsupportedOperationException.class) {
            return firstLine(e.getMessage());
        }
        if (e instanceof OutOfMemoryError) {
            return "out of memory (the Java heap is " + org.mambalens.engine.io.MemoryBudget.size(Runtime.getRuntime().maxMemory())
                    + "); give Java more with MAMBALENS_JAVA_OPTS=-Xmx..., or ask for less";
        }
        if (e instanceof IOException io) {
            String file = io instanceof FileSystemException fs && fs.getFile() != null ? fs.getFile() + ": " : "";
            return file + firstLine(AtomicWrite.reason(io));
        }
        return "internal error (" + (e.getMessage() == null ? e.getClass().getSimpleName() : firstLine(e.getMessage()))
                + "); please report it with the output of MAMBALENS_JAVA_OPTS=-Dmambalens.debug=true";
    }

    private static String firstLine(String message) {
        if (message == null || message.isBlank()) return "failed";
        return message.lines().findFirst().orElse(message);
    }
}
