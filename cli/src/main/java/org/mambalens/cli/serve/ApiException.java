package org.mambalens.cli.serve;

/** A request the explorer's API answers with an HTTP error status and a one-line message. */
final class ApiException extends RuntimeException {
    static final int BAD_REQUEST = 400, FORBIDDEN = 403, NOT_FOUND = 404, METHOD_NOT_ALLOWED = 405, TOO_LARGE = 413;

    private final int status;

    ApiException(int status, String message) {
        super(message);
        this.status = status;
    }

    int status() {
        return status;
    }
}
