package dev.kinesin;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletionException;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.core.SdkBytes;
import software.amazon.awssdk.core.retry.backoff.FixedDelayBackoffStrategy;
import software.amazon.awssdk.core.waiters.WaiterOverrideConfiguration;
import software.amazon.awssdk.http.apache.ApacheHttpClient;
import software.amazon.awssdk.http.nio.netty.NettyNioAsyncHttpClient;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.kinesis.KinesisAsyncClient;
import software.amazon.awssdk.services.kinesis.KinesisClient;
import software.amazon.awssdk.services.kinesis.model.DescribeStreamRequest;
import software.amazon.awssdk.services.kinesis.model.GetRecordsResponse;
import software.amazon.awssdk.services.kinesis.model.InvalidArgumentException;
import software.amazon.awssdk.services.kinesis.model.KinesisException;
import software.amazon.awssdk.services.kinesis.model.ListShardsResponse;
import software.amazon.awssdk.services.kinesis.model.PutRecordsRequestEntry;
import software.amazon.awssdk.services.kinesis.model.PutRecordsResponse;
import software.amazon.awssdk.services.kinesis.model.Record;
import software.amazon.awssdk.services.kinesis.model.ResourceInUseException;
import software.amazon.awssdk.services.kinesis.model.ResourceNotFoundException;
import software.amazon.awssdk.services.kinesis.model.Shard;
import software.amazon.awssdk.services.kinesis.model.ShardIteratorType;
import software.amazon.awssdk.services.kinesis.model.StreamDescriptionSummary;
import software.amazon.awssdk.services.kinesis.model.StreamStatus;

/**
 * The AWS SDK for Java v2 against the real kinesin binary, with the SDK's defaults: CBOR on
 * (the Java SDK's default for Kinesis), the async client on Netty with HTTP/2 (cleartext prior
 * knowledge, and over TLS without ALPN), the sync client on Apache HTTP/1.1. Pins: CBOR blobs and
 * tag-1 millisecond timestamps both ways (arrival times near now, AT_TIMESTAMP finds records),
 * CBOR errors mapped to the SDK's modeled exceptions, 10 MB PutRecords bodies over HTTP/2, and
 * the self-signed certificate the server generates being valid for 127.0.0.1.
 */
class KinesisSdkTest {
    private static KinesinServer kinesin;
    private static URI http;
    private static URI https;
    private static final StaticCredentialsProvider CREDENTIALS =
            StaticCredentialsProvider.create(AwsBasicCredentials.create("test", "test"));
    private static final WaiterOverrideConfiguration FAST_WAITER = WaiterOverrideConfiguration.builder()
            .backoffStrategy(FixedDelayBackoffStrategy.create(Duration.ofMillis(100)))
            .waitTimeout(Duration.ofSeconds(30))
            .build();

    @BeforeAll
    static void startServer() throws Exception {
        kinesin = KinesinServer.start(
                "--create-stream-ms", "300", "--delete-stream-ms", "0",
                // Throughput limits are the black-box suite's business; a 10 MB put here
                // checks transport, not the 1 MiB/s shard limit.
                "--limits", "off",
                "--log-level", "info,kinesin_server=debug");
        http = kinesin.http;
        https = kinesin.https;
    }

    @AfterAll
    static void stopServer() throws Exception {
        if (kinesin != null) {
            kinesin.close();
        }
    }

    private static KinesisAsyncClient asyncClient(URI endpoint) {
        var b = KinesisAsyncClient.builder().endpointOverride(endpoint).region(Region.US_EAST_1)
                .credentialsProvider(CREDENTIALS);
        if (endpoint.getScheme().equals("https")) {
            // Only the trust store changes; the SDK still applies Kinesis's HTTP/2 default.
            b.httpClientBuilder(NettyNioAsyncHttpClient.builder().tlsTrustManagersProvider(kinesin::trustGenerated));
        }
        return b.build();
    }

    private static KinesisClient syncClient(URI endpoint) {
        var b = KinesisClient.builder().endpointOverride(endpoint).region(Region.US_EAST_1)
                .credentialsProvider(CREDENTIALS);
        if (endpoint.getScheme().equals("https")) {
            b.httpClientBuilder(ApacheHttpClient.builder().tlsTrustManagersProvider(kinesin::trustGenerated));
        }
        return b.build();
    }

    private static Throwable cause(Throwable t) {
        return t instanceof CompletionException && t.getCause() != null ? t.getCause() : t;
    }

    /** Create → ACTIVE → put → list shards → get (TRIM_HORIZON and AT_TIMESTAMP) → delete. */
    private static void roundTrip(KinesisAsyncClient k, String stream) throws Exception {
        Instant before = Instant.now().minusSeconds(1);
        k.createStream(r -> r.streamName(stream).shardCount(2)).join();
        StreamStatus status = k.describeStreamSummary(r -> r.streamName(stream)).join()
                .streamDescriptionSummary().streamStatus();
        assertEquals(StreamStatus.CREATING, status);
        k.waiter().waitUntilStreamExists(DescribeStreamRequest.builder().streamName(stream).build(), FAST_WAITER).join();
        StreamDescriptionSummary summary = k.describeStreamSummary(r -> r.streamName(stream)).join()
                .streamDescriptionSummary();
        assertEquals(StreamStatus.ACTIVE, summary.streamStatus());
        assertNear(summary.streamCreationTimestamp(), "StreamCreationTimestamp");

        Random random = new Random(42);
        List<byte[]> sent = new ArrayList<>();
        for (int i = 0; i < 5; i++) {
            byte[] data = new byte[1 + random.nextInt(300)];
            random.nextBytes(data); // every byte value: a blob, not text
            sent.add(data);
            final int n = i;
            k.putRecord(r -> r.streamName(stream).partitionKey("pk-" + n).data(SdkBytes.fromByteArray(data))).join();
        }
        List<PutRecordsRequestEntry> entries = new ArrayList<>();
        for (int i = 0; i < 20; i++) {
            byte[] data = ("record " + i).getBytes(StandardCharsets.UTF_8);
            sent.add(data);
            entries.add(PutRecordsRequestEntry.builder().partitionKey("pk-" + i).data(SdkBytes.fromByteArray(data)).build());
        }
        PutRecordsResponse put = k.putRecords(r -> r.streamName(stream).records(entries)).join();
        assertEquals(0, put.failedRecordCount());
        assertEquals(20, put.records().size());

        ListShardsResponse shards = k.listShards(r -> r.streamName(stream)).join();
        assertEquals(2, shards.shards().size());
        List<byte[]> received = new ArrayList<>();
        for (Shard shard : shards.shards()) {
            String it = k.getShardIterator(r -> r.streamName(stream).shardId(shard.shardId())
                    .shardIteratorType(ShardIteratorType.TRIM_HORIZON)).join().shardIterator();
            GetRecordsResponse got = k.getRecords(r -> r.shardIterator(it)).join();
            assertTrue(got.nextShardIterator() != null, "open shard has a next iterator");
            for (Record rec : got.records()) {
                received.add(rec.data().asByteArray());
                assertNear(rec.approximateArrivalTimestamp(), "ApproximateArrivalTimestamp");
            }
            // A timestamp in the request (CBOR tag 1, milliseconds): every record is after it.
            String at = k.getShardIterator(r -> r.streamName(stream).shardId(shard.shardId())
                    .shardIteratorType(ShardIteratorType.AT_TIMESTAMP).timestamp(before)).join().shardIterator();
            assertEquals(got.records().size(), k.getRecords(r -> r.shardIterator(at)).join().records().size());
            // A future timestamp is refused, and the message shows the milliseconds we sent.
            Instant future = Instant.now().plusSeconds(3600);
            Throwable e = assertThrows(CompletionException.class, () -> k.getShardIterator(r -> r.streamName(stream)
                    .shardId(shard.shardId()).shardIteratorType(ShardIteratorType.AT_TIMESTAMP).timestamp(future)).join());
            assertInstanceOf(InvalidArgumentException.class, cause(e));
            assertTrue(cause(e).getMessage().contains("timestampInMillis: " + future.toEpochMilli() + ","),
                    cause(e).getMessage());
        }
        assertEquals(sent.size(), received.size());
        for (byte[] s : sent) {
            assertTrue(received.stream().anyMatch(r -> java.util.Arrays.equals(r, s)), "record lost");
        }
        k.deleteStream(r -> r.streamName(stream)).join();
    }

    /** A timestamp read as seconds-for-milliseconds (or the reverse) lands in 1970 or year 55000. */
    private static void assertNear(Instant t, String what) {
        Duration off = Duration.between(t, Instant.now()).abs();
        assertTrue(off.compareTo(Duration.ofMinutes(5)) < 0, what + " " + t + " is not near now");
    }

    @Test
    void asyncClientDefaultsCborOverHttp2() throws Exception {
        try (KinesisAsyncClient k = asyncClient(http)) {
            roundTrip(k, "java-async");
            Throwable e = assertThrows(CompletionException.class,
                    () -> k.describeStream(r -> r.streamName("java-missing")).join());
            assertInstanceOf(ResourceNotFoundException.class, cause(e));
            assertTrue(cause(e).getMessage().contains("Stream java-missing under account 000000000000 not found."),
                    cause(e).getMessage());
        }
        // The server logs each request's HTTP version and content type at debug level.
        String text = kinesin.log();
        assertTrue(Pattern.compile("version=HTTP/2\\.0.*PutRecords.*application/x-amz-cbor-1\\.1").matcher(text).find(),
                "the async client spoke CBOR over HTTP/2:\n" + text.substring(Math.max(0, text.length() - 2000)));
    }

    @Test
    void syncClientCborAndErrors() {
        try (KinesisClient k = syncClient(http)) {
            k.createStream(r -> r.streamName("java-sync").shardCount(1));
            assertInstanceOf(ResourceInUseException.class,
                    assertThrows(KinesisException.class, () -> k.createStream(r -> r.streamName("java-sync").shardCount(1))));
            k.waiter().waitUntilStreamExists(DescribeStreamRequest.builder().streamName("java-sync").build(), FAST_WAITER);
            var put = k.putRecord(r -> r.streamName("java-sync").partitionKey("a").data(SdkBytes.fromUtf8String("hello")));
            assertEquals("shardId-000000000000", put.shardId());
            String it = k.getShardIterator(r -> r.streamName("java-sync").shardId(put.shardId())
                    .shardIteratorType(ShardIteratorType.AT_SEQUENCE_NUMBER).startingSequenceNumber(put.sequenceNumber()))
                    .shardIterator();
            GetRecordsResponse got = k.getRecords(r -> r.shardIterator(it));
            assertEquals(1, got.records().size());
            assertEquals("hello", got.records().get(0).data().asUtf8String());
            assertEquals(put.sequenceNumber(), got.records().get(0).sequenceNumber());

            assertThrows(ResourceNotFoundException.class, () -> k.describeStreamSummary(r -> r.streamName("nope")));
            assertThrows(ResourceNotFoundException.class, () -> k.getShardIterator(r -> r.streamName("java-sync")
                    .shardId("shardId-000000000009").shardIteratorType(ShardIteratorType.LATEST)));
            KinesisException bad = assertThrows(KinesisException.class, () -> k.createStream(r -> r.streamName("bad name!")));
            assertEquals("ValidationException", bad.awsErrorDetails().errorCode());
            assertEquals(400, bad.statusCode());
            KinesisException badIt = assertThrows(KinesisException.class, () -> k.getRecords(r -> r.shardIterator("AAAA")));
            assertEquals("InvalidArgumentException", badIt.awsErrorDetails().errorCode());
            // Operations without output (CBOR `{}`), and tags round trip.
            k.addTagsToStream(r -> r.streamName("java-sync").tags(java.util.Map.of("team", "data")));
            assertEquals("data", k.listTagsForStream(r -> r.streamName("java-sync")).tags().get(0).value());
            k.increaseStreamRetentionPeriod(r -> r.streamName("java-sync").retentionPeriodHours(48));
            assertEquals(48, k.describeStreamSummary(r -> r.streamName("java-sync")).streamDescriptionSummary()
                    .retentionPeriodHours());
            assertTrue(k.describeLimits().shardLimit() > 0);
            assertTrue(k.listStreams().streamNames().contains("java-sync"));
            k.deleteStream(r -> r.streamName("java-sync"));
        }
    }

    @Test
    void tenMegabytePutRecordsOverHttp2() {
        try (KinesisAsyncClient k = asyncClient(http)) {
            k.createStream(r -> r.streamName("java-big").shardCount(1)).join();
            k.waiter().waitUntilStreamExists(DescribeStreamRequest.builder().streamName("java-big").build(), FAST_WAITER).join();
            Random random = new Random(7);
            List<PutRecordsRequestEntry> entries = new ArrayList<>();
            List<byte[]> sent = new ArrayList<>();
            for (int i = 0; i < 10; i++) {
                byte[] data = new byte[1_000_000];
                random.nextBytes(data);
                sent.add(data);
                entries.add(PutRecordsRequestEntry.builder().partitionKey("k" + i).data(SdkBytes.fromByteArray(data)).build());
            }
            assertEquals(0, k.putRecords(r -> r.streamName("java-big").records(entries)).join().failedRecordCount());
            String it = k.getShardIterator(r -> r.streamName("java-big").shardId("shardId-000000000000")
                    .shardIteratorType(ShardIteratorType.TRIM_HORIZON)).join().shardIterator();
            List<Record> got = new ArrayList<>();
            String next = it;
            for (int calls = 0; calls < 10 && got.size() < sent.size(); calls++) {
                final String cur = next;
                GetRecordsResponse r = k.getRecords(b -> b.shardIterator(cur)).join();
                got.addAll(r.records());
                next = r.nextShardIterator();
            }
            assertEquals(sent.size(), got.size());
            for (int i = 0; i < sent.size(); i++) {
                assertArrayEquals(sent.get(i), got.get(i).data().asByteArray());
            }
            k.deleteStream(r -> r.streamName("java-big")).join();
        }
    }

    @Test
    void tlsWithTheGeneratedCertificate() throws Exception {
        try (KinesisAsyncClient k = asyncClient(https)) {
            roundTrip(k, "java-tls-async");
        }
        try (KinesisClient k = syncClient(https)) {
            k.createStream(r -> r.streamName("java-tls-sync").shardCount(1));
            k.waiter().waitUntilStreamExists(DescribeStreamRequest.builder().streamName("java-tls-sync").build(), FAST_WAITER);
            assertThrows(ResourceNotFoundException.class, () -> k.describeStream(r -> r.streamName("nope")));
            assertNull(k.listShards(r -> r.streamName("java-tls-sync")).nextToken());
            k.deleteStream(r -> r.streamName("java-tls-sync"));
        }
    }
}
