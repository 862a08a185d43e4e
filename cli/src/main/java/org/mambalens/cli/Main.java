package org.mambalens.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

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
        cli.setExecutionExceptionHandler((e, cmd, parsed) -> {
            // One clear line, no stack trace: every error the engine raises names the file or argument.
            cmd.getErr().println("mambalens " + cmd.getCommandName() + ": " + oneLine(e));
            if (Boolean.getBoolean("mambalens.debug")) e.printStackTrace(cmd.getErr());
            return 1;
        });
        return cli.execute(args);
    }

    /** The one line an error is reported in (the first of its message), as every command and the explorer's API say it. */
    public static String oneLine(Throwable e) {
        String message = e.getMessage();
        if (e instanceof OutOfMemoryError) message = "out of memory (" + message + "); give Java more with MAMBALENS_JAVA_OPTS=-Xmx...";
        if (message == null || message.isBlank()) message = e.getClass().getSimpleName();
        return message.lines().findFirst().orElse(message);
    }
}
