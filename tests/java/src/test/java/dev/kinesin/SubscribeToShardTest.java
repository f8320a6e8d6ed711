package dev.kinesin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.math.BigInteger;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.core.SdkBytes;
import software.amazon.awssdk.core.retry.backoff.FixedDelayBackoffStrategy;
import software.amazon.awssdk.core.waiters.WaiterOverrideConfiguration;
import software.amazon.awssdk.http.Protocol;
import software.amazon.awssdk.http.ProtocolNegotiation;
import software.amazon.awssdk.http.nio.netty.NettyNioAsyncHttpClient;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.kinesis.KinesisAsyncClient;
import software.amazon.awssdk.services.kinesis.model.ChildShard;
import software.amazon.awssdk.services.kinesis.model.Consumer;
import software.amazon.awssdk.services.kinesis.model.ConsumerStatus;
import software.amazon.awssdk.services.kinesis.model.DescribeStreamRequest;
import software.amazon.awssdk.services.kinesis.model.PutRecordsRequestEntry;
import software.amazon.awssdk.services.kinesis.model.PutRecordsResultEntry;
import software.amazon.awssdk.services.kinesis.model.Record;
import software.amazon.awssdk.services.kinesis.model.ShardIteratorType;
import software.amazon.awssdk.services.kinesis.model.StreamStatus;
import software.amazon.awssdk.services.kinesis.model.SubscribeToShardEvent;
import software.amazon.awssdk.services.kinesis.model.SubscribeToShardResponseHandler;

/**
 * SubscribeToShard through the AWS SDK for Java v2's `KinesisAsyncClient` with its defaults (CBOR
 * on — though the SDK sends SubscribeToShard itself as JSON — and Netty over HTTP/2), over cleartext HTTP/2 (prior knowledge, the SDK's default
 * for http://), over TLS with the SDK's default (HTTP/2 assumed, no ALPN) and over TLS with ALPN
 * `h2`. Pins: every record arrives once, in order, with the sequence number PutRecords gave it;
 * a split while subscribed ends the parent's subscription with a null ContinuationSequenceNumber
 * and both children in ChildShards; the children deliver what was written after the split; and
 * resubscribing AFTER_SEQUENCE_NUMBER of a record or of a ContinuationSequenceNumber loses nothing,
 * also the one an empty shard gave (KCL resubscribes this way), and a closed shard read from the
 * middle ends with its last records and the children.
 */
class SubscribeToShardTest {
    private static KinesinServer server;
    private static final StaticCredentialsProvider CREDENTIALS =
            StaticCredentialsProvider.create(AwsBasicCredentials.create("test", "test"));
    private static final WaiterOverrideConfiguration FAST_WAITER = WaiterOverrideConfiguration.builder()
            .backoffStrategy(FixedDelayBackoffStrategy.create(Duration.ofMillis(100)))
            .waitTimeout(Duration.ofSeconds(30))
            .build();
    /** Half of the hash key space: the split point giving two equal children. */
    private static final BigInteger HALF = BigInteger.TWO.pow(127);

    @BeforeAll
    static void startServer() throws Exception {
        // CREATING / UPDATING last 300 ms, so the test waits for ACTIVE as a real client must.
        server = KinesinServer.start("--create-stream-ms", "300", "--delete-stream-ms", "0",
                "--update-stream-ms", "300", "--limits", "off", "--log-level", "info,kinesin_server=debug");
    }

    @AfterAll
    static void stopServer() throws Exception {
        if (server != null) {
            server.close();
        }
    }

    private static KinesisAsyncClient client(URI endpoint, boolean alpn) {
        var b = KinesisAsyncClient.builder().endpointOverride(endpoint).region(Region.US_EAST_1)
                .credentialsProvider(CREDENTIALS);
        if (endpoint.getScheme().equals("https")) {
            var netty = NettyNioAsyncHttpClient.builder().tlsTrustManagersProvider(server::trustGenerated);
            if (alpn) {
                netty.protocol(Protocol.HTTP2).protocolNegotiation(ProtocolNegotiation.ALPN);
            }
            b.httpClientBuilder(netty);
        }
        return b.build();
    }

    @Test
    void http2Cleartext() throws Exception {
        try (KinesisAsyncClient k = client(server.http, false)) {
            subscribeSplitFollow(k, "sub-h2c");
        }
        // The SDK sends SubscribeToShard as JSON even with CBOR on (its event-stream operations
        // do not use CBOR); the other calls are CBOR. Both over HTTP/2.
        String log = server.log();
        assertTrue(Pattern.compile("version=HTTP/2\\.0.*SubscribeToShard.*application/x-amz-json-1\\.1").matcher(log).find(),
                "SubscribeToShard went over HTTP/2:\n" + server.logTail(3000));
        assertTrue(Pattern.compile("version=HTTP/2\\.0.*PutRecords.*application/x-amz-cbor-1\\.1").matcher(log).find(),
                "PutRecords went over HTTP/2 with CBOR:\n" + server.logTail(3000));
    }

    @Test
    void tlsDefault() throws Exception {
        try (KinesisAsyncClient k = client(server.https, false)) {
            subscribeSplitFollow(k, "sub-tls");
        }
    }

    @Test
    void tlsAlpnH2() throws Exception {
        try (KinesisAsyncClient k = client(server.https, true)) {
            subscribeSplitFollow(k, "sub-alpn");
        }
    }

    /** What one subscription delivered: its events in order, and how it ended. */
    private static final class Subscription {
        final LinkedBlockingQueue<SubscribeToShardEvent> events = new LinkedBlockingQueue<>();
        final CompletableFuture<Void> done;

        Subscription(KinesisAsyncClient k, String consumerArn, String shardId, ShardIteratorType type, String seq) {
            SubscribeToShardResponseHandler handler = SubscribeToShardResponseHandler.builder()
                    .subscriber(SubscribeToShardResponseHandler.Visitor.builder()
                            .onSubscribeToShardEvent(events::add).build())
                    .build();
            done = k.subscribeToShard(r -> r.consumerARN(consumerArn).shardId(shardId)
                    .startingPosition(p -> p.type(type).sequenceNumber(seq)), handler);
        }

        SubscribeToShardEvent next() throws Exception {
            SubscribeToShardEvent e = events.poll(20, TimeUnit.SECONDS);
            if (e == null) {
                fail("no event within 20 s (subscription " + (done.isDone() ? "ended: " + done : "open") + ")");
            }
            return e;
        }

        /**
         * Events until `count` records arrived. Every event has a ContinuationSequenceNumber but
         * the one ending a closed shard, which may also carry its last records.
         */
        List<Record> records(int count) throws Exception {
            List<Record> got = new ArrayList<>();
            while (got.size() < count) {
                SubscribeToShardEvent e = next();
                got.addAll(e.records());
                if (e.continuationSequenceNumber() == null) {
                    assertEquals(count, got.size(), "the shard-end event comes after every record");
                    assertEquals(2, e.childShards().size(), "the shard-end event lists the children");
                }
            }
            assertEquals(count, got.size(), "no record beyond the ones written");
            return got;
        }
    }

    private static List<PutRecordsResultEntry> put(KinesisAsyncClient k, String stream, List<String> data) {
        List<PutRecordsRequestEntry> entries = new ArrayList<>();
        for (String d : data) {
            entries.add(PutRecordsRequestEntry.builder().partitionKey(d)
                    .data(SdkBytes.fromString(d, StandardCharsets.UTF_8)).build());
        }
        var out = k.putRecords(r -> r.streamName(stream).records(entries)).join();
        assertEquals(0, out.failedRecordCount());
        return out.records();
    }

    private static void assertDelivered(List<String> data, List<PutRecordsResultEntry> put, List<Record> got) {
        assertEquals(data.size(), got.size());
        for (int i = 0; i < data.size(); i++) {
            assertEquals(data.get(i), got.get(i).data().asUtf8String(), "record " + i);
            assertEquals(put.get(i).sequenceNumber(), got.get(i).sequenceNumber(), "sequence number of record " + i);
            assertEquals(data.get(i), got.get(i).partitionKey());
        }
    }

    private static Consumer register(KinesisAsyncClient k, String streamArn, String name) throws Exception {
        Consumer c = k.registerStreamConsumer(r -> r.streamARN(streamArn).consumerName(name)).join().consumer();
        for (int i = 0; i < 100; i++) {
            var d = k.describeStreamConsumer(r -> r.consumerARN(c.consumerARN())).join().consumerDescription();
            if (d.consumerStatus() == ConsumerStatus.ACTIVE) {
                return c;
            }
            Thread.sleep(100);
        }
        fail("consumer " + name + " did not become ACTIVE");
        return c;
    }

    private static void subscribeSplitFollow(KinesisAsyncClient k, String stream) throws Exception {
        k.createStream(r -> r.streamName(stream).shardCount(1)).join();
        k.waiter().waitUntilStreamExists(DescribeStreamRequest.builder().streamName(stream).build(), FAST_WAITER).join();
        String streamArn = k.describeStreamSummary(r -> r.streamName(stream)).join().streamDescriptionSummary().streamARN();
        String parent = "shardId-000000000000";

        List<String> before = new ArrayList<>();
        for (int i = 0; i < 60; i++) {
            before.add(stream + "-before-" + i);
        }
        List<PutRecordsResultEntry> putBefore = put(k, stream, before);
        Consumer consumer = register(k, streamArn, "app");

        // Everything written so far, in order, with PutRecords' sequence numbers.
        Subscription sub = new Subscription(k, consumer.consumerARN(), parent, ShardIteratorType.TRIM_HORIZON, null);
        assertDelivered(before, putBefore, sub.records(before.size()));

        // Split while subscribed: the subscription reaches the parent's end.
        k.splitShard(r -> r.streamName(stream).shardToSplit(parent).newStartingHashKey(HALF.toString())).join();
        SubscribeToShardEvent last;
        do {
            last = sub.next();
            assertTrue(last.records().isEmpty(), "no record lands in the parent after the split");
        } while (last.continuationSequenceNumber() != null);
        assertNull(last.continuationSequenceNumber());
        assertEquals(0L, last.millisBehindLatest());
        Set<String> children = last.childShards().stream().map(ChildShard::shardId).collect(Collectors.toCollection(TreeSet::new));
        assertEquals(Set.of("shardId-000000000001", "shardId-000000000002"), children);
        for (ChildShard c : last.childShards()) {
            assertEquals(List.of(parent), c.parentShards());
        }
        sub.done.get(20, TimeUnit.SECONDS); // the server ends the stream after the shard end
        assertTrue(sub.events.isEmpty(), "nothing after the shard-end event");
        waitActive(k, stream);

        // Follow the children: subscribe before anything is written to them (their first event
        // is empty), then write, and each child delivers the records routed to it.
        Map<String, Subscription> childSubs = new HashMap<>();
        Map<String, String> emptyContinuation = new HashMap<>();
        for (String child : children) {
            Subscription s = new Subscription(k, consumer.consumerARN(), child, ShardIteratorType.TRIM_HORIZON, null);
            SubscribeToShardEvent first = s.next();
            assertTrue(first.records().isEmpty());
            assertNotNull(first.continuationSequenceNumber());
            childSubs.put(child, s);
            emptyContinuation.put(child, first.continuationSequenceNumber());
        }
        List<String> after = new ArrayList<>();
        for (int i = 0; i < 80; i++) {
            after.add(stream + "-after-" + i);
        }
        List<PutRecordsResultEntry> putAfter = put(k, stream, after);
        Map<String, List<String>> dataByShard = new HashMap<>();
        Map<String, List<PutRecordsResultEntry>> putByShard = new HashMap<>();
        for (int i = 0; i < after.size(); i++) {
            String shard = putAfter.get(i).shardId();
            assertTrue(children.contains(shard), "records after the split go to the children, not " + shard);
            dataByShard.computeIfAbsent(shard, x -> new ArrayList<>()).add(after.get(i));
            putByShard.computeIfAbsent(shard, x -> new ArrayList<>()).add(putAfter.get(i));
        }
        assertEquals(2, dataByShard.size(), "80 keys land on both halves");
        for (String child : children) {
            assertDelivered(dataByShard.get(child), putByShard.get(child), childSubs.get(child).records(dataByShard.get(child).size()));
        }

        // A second consumer resubscribes the way KCL does after a subscription ends: from the
        // parent AFTER_SEQUENCE_NUMBER of a record, and from each child AFTER_SEQUENCE_NUMBER
        // of the continuation its empty first event carried. Nothing may be skipped.
        Consumer second = register(k, streamArn, "resume");
        Subscription resumed = new Subscription(k, second.consumerARN(), parent,
                ShardIteratorType.AFTER_SEQUENCE_NUMBER, putBefore.get(19).sequenceNumber());
        assertDelivered(before.subList(20, before.size()), putBefore.subList(20, putBefore.size()),
                resumed.records(before.size() - 20));
        for (String child : children) {
            Subscription s = new Subscription(k, second.consumerARN(), child,
                    ShardIteratorType.AFTER_SEQUENCE_NUMBER, emptyContinuation.get(child));
            assertDelivered(dataByShard.get(child), putByShard.get(child), s.records(dataByShard.get(child).size()));
        }
        k.deleteStream(r -> r.streamName(stream).enforceConsumerDeletion(true)).join();
    }

    private static void waitActive(KinesisAsyncClient k, String stream) throws Exception {
        for (int i = 0; i < 100; i++) {
            if (k.describeStreamSummary(r -> r.streamName(stream)).join().streamDescriptionSummary().streamStatus()
                    == StreamStatus.ACTIVE) {
                return;
            }
            Thread.sleep(100);
        }
        fail(stream + " did not return to ACTIVE after the split");
    }
}
