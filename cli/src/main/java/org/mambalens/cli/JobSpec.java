package org.mambalens.cli;

import org.mambalens.xai.eval.DatasetJob;

import java.io.Serializable;
import java.nio.file.Path;
import java.util.List;
import java.util.function.UnaryOperator;

/**
 * A dataset command's job as values (model directories, data, options), before anything is loaded: what the
 * command runs here, and what a Spark driver sends to its executors, each of which opens it once. Records
 * compare by value, so an executor keys its opened jobs by the spec.
 */
public interface JobSpec extends Serializable {
    /** The files and directories the job reads (models, data): a cluster copies them to its executors. */
    List<Path> inputs();

    /** The same job with every input path replaced by {@code located}'s answer (an executor's local copy). */
    JobSpec relocated(UnaryOperator<Path> located);

    /** Loads the models and the data. */
    DatasetJob open();
}
