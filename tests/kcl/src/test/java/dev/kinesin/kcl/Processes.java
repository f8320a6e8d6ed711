package dev.kinesin.kcl;

import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.Duration;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** A server process for the test (kinesin or dynalite), its port and its log. */
final class Processes implements AutoCloseable {
    final String name;
    final URI endpoint;
    private final Process process;
    private final Path log;

    private Processes(String name, Process process, Path log, URI endpoint) {
        this.name = name;
        this.process = process;
        this.log = log;
        this.endpoint = endpoint;
    }

    /**
     * kinesin (KINESIN_BIN, else ../../target/release/kinesin) on a free plain port and, at
     * `tlsPort`, a TLS one with the self-signed certificate it generates.
     */
    static Processes kinesin(int tlsPort) throws Exception {
        String bin = System.getenv().getOrDefault("KINESIN_BIN", "../../target/release/kinesin");
        if (!Files.isExecutable(Paths.get(bin))) {
            fail("kinesin binary not found at " + bin + "; build it (cargo build --release -p kinesin) or set KINESIN_BIN");
        }
        int port = freePort();
        Processes p = start("kinesin", port, List.of(bin, "serve", "--ephemeral", "--listen", "127.0.0.1:" + port,
                "--tls-listen", "127.0.0.1:" + tlsPort,
                "--create-stream-ms", "0", "--delete-stream-ms", "0", "--update-stream-ms", "0"));
        p.waitForPort(tlsPort);
        return p;
    }

    /** The path of the certificate kinesin generated, from its log. */
    Path generatedCertificate() {
        Matcher m = Pattern.compile("self-signed certificate \\(generated\\) (\\S+)").matcher(logTail(Integer.MAX_VALUE));
        if (!m.find()) {
            fail("kinesin did not log a generated certificate:\n" + logTail(4000));
        }
        return Paths.get(m.group(1));
    }

    /** dynalite (npm, installed into node_modules by `npm ci`), in memory, tables ACTIVE at once. */
    static Processes dynalite() throws Exception {
        Path cli = Paths.get("node_modules/dynalite/cli.js");
        if (!Files.exists(cli)) {
            fail("dynalite not installed: run `npm ci` in tests/kcl");
        }
        int port = freePort();
        return start("dynalite", port, List.of(System.getenv().getOrDefault("NODE", "node"), cli.toString(),
                "--host", "127.0.0.1", "--port", Integer.toString(port),
                "--createTableMs", "0", "--updateTableMs", "0", "--deleteTableMs", "0"));
    }

    private static Processes start(String name, int port, List<String> cmd) throws Exception {
        Path log = Files.createTempFile(name + "-", ".log");
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        Processes out = new Processes(name, p, log, URI.create("http://127.0.0.1:" + port));
        out.waitForPort(port);
        return out;
    }

    private void waitForPort(int port) throws Exception {
        long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while (System.nanoTime() < deadline) {
            if (!process.isAlive()) {
                fail(name + " exited early:\n" + Files.readString(log));
            }
            try (Socket s = new Socket()) {
                s.connect(new InetSocketAddress("127.0.0.1", port), 200);
                return;
            } catch (IOException e) {
                Thread.sleep(50);
            }
        }
        fail(name + " did not listen on " + port + ":\n" + Files.readString(log));
    }

    static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    /** The last `chars` characters of the log, without terminal colour codes. */
    String logTail(int chars) {
        try {
            String text = Files.readString(log).replaceAll("\u001B\\[[;\\d]*m", "");
            return text.substring(Math.max(0, text.length() - chars));
        } catch (IOException e) {
            return "(log unreadable: " + e + ")";
        }
    }

    @Override
    public void close() throws InterruptedException {
        process.destroy();
        process.waitFor();
    }
}
