package dev.kinesin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.AwsCredentials;
import software.amazon.awssdk.auth.credentials.AwsSessionCredentials;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.core.SdkBytes;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.kinesis.KinesisAsyncClient;
import software.amazon.awssdk.services.kinesis.KinesisClient;
import software.amazon.awssdk.services.kinesis.model.KinesisException;
import software.amazon.awssdk.services.kinesis.model.ShardIteratorType;
import software.amazon.awssdk.services.kinesis.model.SubscribeToShardEvent;
import software.amazon.awssdk.services.kinesis.model.SubscribeToShardResponseHandler;

/**
 * The AWS SDK for Java v2 against a kinesin started with `--credentials`, so every request's
 * SigV4 signature is verified. Both clients keep their defaults (CBOR; the async client on Netty
 * over HTTP/2 cleartext, the sync client on Apache HTTP/1.1) and get static credentials, with and
 * without a session token. Signed calls — including a SubscribeToShard event — are accepted; a
 * wrong secret is `InvalidSignatureException`, an unknown key or token `UnrecognizedClientException`.
 */
class SigV4Test {
    private static final AwsCredentials ADMIN = AwsBasicCredentials.create("AKIAJAVAADMIN", "java-admin-secret");
    private static final AwsCredentials SESSION =
            AwsSessionCredentials.create("ASIAJAVASESSION", "java-session-secret", "java-session-token");
    private static KinesinServer server;
    private static Path dir;

    @BeforeAll
    static void startServer() throws Exception {
        dir = Files.createTempDirectory("kinesin-java-sigv4-");
        Path file = dir.resolve("credentials.toml");
        Files.writeString(file, """
                [[principal]]
                arn = "arn:aws:iam::000000000000:user/java-admin"
                access_key_id = "AKIAJAVAADMIN"
                secret_access_key = "java-admin-secret"

                [[principal]]
                arn = "arn:aws:sts::000000000000:assumed-role/java/session"
                access_key_id = "ASIAJAVASESSION"
                secret_access_key = "java-session-secret"
                session_token = "java-session-token"
                """);
        server = KinesinServer.start("--credentials", file.toString(), "--create-stream-ms", "0",
                "--delete-stream-ms", "0", "--limits", "off", "--log-level", "info,kinesin_server=debug");
    }

    @AfterAll
    static void stopServer() throws Exception {
        if (server != null) {
            server.close();
        }
        if (dir != null) {
            try (var files = Files.list(dir)) {
                for (Path p : files.toList()) {
                    Files.delete(p);
                }
            }
            Files.delete(dir);
        }
    }

    private static KinesisAsyncClient async(AwsCredentials c) {
        return KinesisAsyncClient.builder().endpointOverride(server.http).region(Region.US_EAST_1)
                .credentialsProvider(StaticCredentialsProvider.create(c)).build();
    }

    private static KinesisClient sync(AwsCredentials c) {
        return KinesisClient.builder().endpointOverride(server.http).region(Region.US_EAST_1)
                .credentialsProvider(StaticCredentialsProvider.create(c)).build();
    }

    private static SdkBytes bytes(String s) {
        return SdkBytes.fromString(s, StandardCharsets.UTF_8);
    }

    /** The error code of a call expected to fail with a KinesisException (sync or async). */
    private static String errorCode(Supplier<?> call) {
        KinesisException e = assertThrows(KinesisException.class, () -> {
            try {
                call.get();
            } catch (CompletionException ce) {
                throw ce.getCause();
            }
        });
        assertEquals(400, e.statusCode(), e.toString());
        return e.awsErrorDetails().errorCode();
    }

    @Test
    void signedRequestsAcceptedAndBadSignaturesRejected() throws Exception {
        try (KinesisAsyncClient admin = async(ADMIN); KinesisAsyncClient session = async(SESSION);
                KinesisClient adminSync = sync(ADMIN); KinesisClient sessionSync = sync(SESSION)) {
            String stream = "java-signed";
            admin.createStream(r -> r.streamName(stream).shardCount(1)).join();
            adminSync.waiter().waitUntilStreamExists(r -> r.streamName(stream));
            String streamArn = sessionSync.describeStreamSummary(r -> r.streamName(stream))
                    .streamDescriptionSummary().streamARN();

            // PutRecord through all four clients, then GetRecords through each sees all four.
            List<String> sent = new ArrayList<>();
            int i = 0;
            for (KinesisAsyncClient k : List.of(admin, session)) {
                String d = "async-" + i++;
                sent.add(k.putRecord(r -> r.streamName(stream).partitionKey(d).data(bytes(d))).join().sequenceNumber());
            }
            for (KinesisClient k : List.of(adminSync, sessionSync)) {
                String d = "sync-" + i++;
                sent.add(k.putRecord(r -> r.streamName(stream).partitionKey(d).data(bytes(d))).sequenceNumber());
            }
            for (KinesisAsyncClient k : List.of(admin, session)) {
                String it = k.getShardIterator(r -> r.streamName(stream).shardId("shardId-000000000000")
                        .shardIteratorType(ShardIteratorType.TRIM_HORIZON)).join().shardIterator();
                var got = k.getRecords(r -> r.shardIterator(it)).join().records().stream().map(r -> r.sequenceNumber()).toList();
                assertEquals(sent, got);
            }
            for (KinesisClient k : List.of(adminSync, sessionSync)) {
                String it = k.getShardIterator(r -> r.streamName(stream).shardId("shardId-000000000000")
                        .shardIteratorType(ShardIteratorType.TRIM_HORIZON)).shardIterator();
                var got = k.getRecords(r -> r.shardIterator(it)).records().stream().map(r -> r.sequenceNumber()).toList();
                assertEquals(sent, got);
            }

            // One SubscribeToShard event, signed with the session token, over HTTP/2.
            String consumerArn = admin.registerStreamConsumer(r -> r.streamARN(streamArn).consumerName("java-signed"))
                    .join().consumer().consumerARN();
            LinkedBlockingQueue<SubscribeToShardEvent> events = new LinkedBlockingQueue<>();
            SubscribeToShardResponseHandler handler = SubscribeToShardResponseHandler.builder()
                    .subscriber(SubscribeToShardResponseHandler.Visitor.builder().onSubscribeToShardEvent(events::add).build())
                    .build();
            CompletableFuture<Void> done = session.subscribeToShard(r -> r.consumerARN(consumerArn)
                    .shardId("shardId-000000000000").startingPosition(p -> p.type(ShardIteratorType.TRIM_HORIZON)), handler);
            List<String> delivered = new ArrayList<>();
            while (delivered.size() < sent.size()) {
                SubscribeToShardEvent e = events.poll(20, TimeUnit.SECONDS);
                if (e == null) {
                    fail("no event within 20 s (subscription " + (done.isDone() ? "ended: " + done : "open") + ")\n"
                            + server.logTail(3000));
                }
                e.records().forEach(r -> delivered.add(r.sequenceNumber()));
            }
            assertEquals(sent, delivered);
            done.cancel(true);

            String log = server.log();
            assertTrue(Pattern.compile("version=HTTP/2\\.0.*PutRecord").matcher(log).find(),
                    "the async client went over HTTP/2:\n" + server.logTail(3000));
            assertTrue(Pattern.compile("version=HTTP/1\\.1.*PutRecord").matcher(log).find(),
                    "the sync client went over HTTP/1.1:\n" + server.logTail(3000));
        }

        // Wrong secrets, an unknown key and a wrong session token, through both clients.
        List<Object[]> cases = List.of(
                new Object[] {AwsBasicCredentials.create("AKIAJAVAADMIN", "wrong-secret"), "InvalidSignatureException"},
                new Object[] {AwsSessionCredentials.create("ASIAJAVASESSION", "wrong-secret", "java-session-token"),
                        "InvalidSignatureException"},
                new Object[] {AwsBasicCredentials.create("AKIAJAVAUNKNOWN", "whatever"), "UnrecognizedClientException"},
                new Object[] {AwsSessionCredentials.create("ASIAJAVASESSION", "java-session-secret", "another-token"),
                        "UnrecognizedClientException"});
        for (Object[] c : cases) {
            AwsCredentials creds = (AwsCredentials) c[0];
            String code = (String) c[1];
            try (KinesisAsyncClient k = async(creds); KinesisClient s = sync(creds)) {
                assertEquals(code, errorCode(() -> k.listStreams().join()), creds.accessKeyId());
                assertEquals(code, errorCode(() -> k.putRecord(r -> r.streamName("java-signed").partitionKey("pk")
                        .data(bytes("x"))).join()), creds.accessKeyId());
                assertEquals(code, errorCode(() -> s.listStreams()), creds.accessKeyId());
                assertEquals(code, errorCode(() -> s.putRecord(r -> r.streamName("java-signed").partitionKey("pk")
                        .data(bytes("x")))), creds.accessKeyId());
            }
        }
    }
}
