package dev.kinesin;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.security.KeyStore;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;

/**
 * One kinesin process for a test class: a plain HTTP port and a TLS port (with the self-signed
 * certificate the server generates), an ephemeral data dir, and the log in a temporary file.
 */
final class KinesinServer implements AutoCloseable {
    final URI http;
    final URI https;
    final Path certificate;
    private final Process process;
    private final Path log;

    private KinesinServer(Process process, Path log, URI http, URI https, Path certificate) {
        this.process = process;
        this.log = log;
        this.http = http;
        this.https = https;
        this.certificate = certificate;
    }

    /** Starts the binary (KINESIN_BIN, else ../../target/release/kinesin) with `extra` flags. */
    static KinesinServer start(String... extra) throws Exception {
        String bin = System.getenv().getOrDefault("KINESIN_BIN", "../../target/release/kinesin");
        if (!Files.isExecutable(Paths.get(bin))) {
            fail("kinesin binary not found at " + bin + "; build it (cargo build --release -p kinesin) or set KINESIN_BIN");
        }
        int port = freePort();
        int tlsPort = freePort();
        Path log = Files.createTempFile("kinesin-java-", ".log");
        List<String> cmd = new ArrayList<>(List.of(bin, "serve", "--ephemeral",
                "--listen", "127.0.0.1:" + port, "--tls-listen", "127.0.0.1:" + tlsPort));
        cmd.addAll(List.of(extra));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        waitForPort(p, log, port);
        waitForPort(p, log, tlsPort);
        String text = clean(Files.readString(log));
        Matcher m = Pattern.compile("self-signed certificate \\(generated\\) (\\S+)").matcher(text);
        assertTrue(m.find(), "the server prints the generated certificate's path:\n" + text);
        return new KinesinServer(p, log, URI.create("http://127.0.0.1:" + port),
                URI.create("https://127.0.0.1:" + tlsPort), Paths.get(m.group(1)));
    }

    /** The server's log so far, without terminal colour codes. */
    String log() throws IOException {
        return clean(Files.readString(log));
    }

    /** The last `chars` characters of the log, for failure messages. */
    String logTail(int chars) {
        try {
            String text = log();
            return text.substring(Math.max(0, text.length() - chars));
        } catch (IOException e) {
            return "(log unreadable: " + e + ")";
        }
    }

    /** Trusts exactly the certificate the server generated (hostname verification stays on). */
    TrustManager[] trustGenerated() {
        try {
            X509Certificate cert = (X509Certificate) CertificateFactory.getInstance("X.509")
                    .generateCertificate(new ByteArrayInputStream(Files.readAllBytes(certificate)));
            KeyStore store = KeyStore.getInstance(KeyStore.getDefaultType());
            store.load(null, null);
            store.setCertificateEntry("kinesin", cert);
            TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
            tmf.init(store);
            return tmf.getTrustManagers();
        } catch (Exception e) {
            throw new RuntimeException(e);
        }
    }

    @Override
    public void close() throws InterruptedException {
        process.destroy();
        process.waitFor();
    }

    private static String clean(String text) {
        return text.replaceAll("\u001B\\[[;\\d]*m", "");
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    private static void waitForPort(Process p, Path log, int port) throws Exception {
        long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while (System.nanoTime() < deadline) {
            if (!p.isAlive()) {
                fail("kinesin exited early:\n" + Files.readString(log));
            }
            try (Socket s = new Socket()) {
                s.connect(new InetSocketAddress("127.0.0.1", port), 200);
                return;
            } catch (IOException e) {
                Thread.sleep(50);
            }
        }
        fail("kinesin did not listen on " + port + ":\n" + Files.readString(log));
    }
}
