// opcua_server.js — an OPC UA server on node-opcua 2.x for linegate's
// interop tests. Usage: node opcua_server.js SPEC.json, where SPEC is
//   {"port": 0, "pki": "/tmp/x/pki", "auto_accept": true,
//    "user": "op", "password": "secret"}
// port 0 picks a free port. It prints "READY <port>" once it listens and
// stops on SIGTERM or SIGINT. Endpoints: None/None (anonymous) and
// Basic256Sha256/SignAndEncrypt (anonymous or user/password). Address space:
//   Objects/Line1/Oven/Temperature  ns=1;s=Oven.Temperature  Double, moves every 100 ms
//   Objects/Line1/Oven/Parts        ns=1;s=Oven.Parts        UInt32, +1 per second
//   Objects/Line1/Oven/Strokes      ns=1;s=Oven.Strokes      UInt16, +2000 every 200 ms (rolls over at 65536)
//   Objects/Line1/Oven/Recipe       ns=1;s=Oven.Recipe       String "PCB-4711"
//   Objects/Line1/Oven/Heater       ns=1;s=Oven.Heater       Boolean
//   Objects/Line1/Oven/Sensor4      ns=1;s=Oven.Sensor4      Double, status BadSensorFailure
//   Objects/Line1/Oven/Level        ns=1;s=Oven.Level        Double 0..1, +0.02 every 100 ms (sawtooth)
//   Objects/Line1/Quiet/Setpoint    ns=1;s=Quiet.Setpoint    Double 180.5, never changes
//   Objects/Line1/Quiet/Mode        ns=1;s=Quiet.Mode        Int32 3, never changes
//   Objects/Line1/Quiet/Batch       ns=1;s=Quiet.Batch       String "B-0815", never changes
//   Objects/Line1/Quiet/Locked      ns=1;s=Quiet.Locked      Double 5, access level CurrentRead (a Write: BadNotWritable)
//   Objects/Plant/A, B, C           nsu=urn:linegate:plant;s=Plant.A ...  Double 1.5, 2.5, 3.5,
//                                   with numeric ids too (ns=<plant>;i=1000.. in creation order)
// With "renumber": true the server is a PLC after a program download: it
// registers another namespace before urn:linegate:plant (whose index moves
// from 2 to 3), with Objects/Download/X0..X2 (7.5, 8.5, 9.5) at the numeric
// ids ns=2;i=1000.. the plant's nodes had, and creates A, B, C in reverse
// order (their numeric ids move).
//
// "cert_file" and "key_file" (PEM) replace the server's own certificate;
// a cert_file holding leaf + CA makes the endpoints carry the chain.
// "application_uri" sets the server's ApplicationURI (the certificate's).
//
// "plain_password": "first" offers, on the None endpoint, a username token
// that sends the password unencrypted (policy none) before the encrypted
// one; "only" offers it alone. Every login prints "LOGIN <policyId>".
// Objects/Line1/Clock/Ahead (ns=1;s=Clock.Ahead, Double 42) has a
// SourceTimestamp one hour ahead of the server's clock.
//
// With "hidden_limit": N the server enforces MaxNodesPerRead and
// MaxMonitoredItemsPerCall of N (BadTooManyOperations for more) but states
// no limit (0), as some servers do; every refused call prints
// "TOO_MANY_OPERATIONS <n>".
//
// Every CreateSession prints "CREATE_SESSION <n>" (the tests count them).
// SIGUSR1 toggles "publish frozen": Publish requests are dropped unanswered
// while reads go on (a session alive, its subscription dead). SIGUSR2
// deletes every session's subscriptions on the server.
"use strict";
const fs = require("fs");
const {
    OPCUAServer, OPCUACertificateManager, Variant, DataType, DataValue, StatusCodes,
    MessageSecurityMode, SecurityPolicy, UserTokenPolicy, UserTokenType,
} = require("node-opcua");

async function main() {
    const spec = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
    const serverCertificateManager = new OPCUACertificateManager({
        automaticallyAcceptUnknownCertificate: !!spec.auto_accept,
        rootFolder: spec.pki,
    });
    await serverCertificateManager.initialize();
    const server = new OPCUAServer({
        port: spec.port || 0,
        hostname: "127.0.0.1",
        alternateHostname: ["127.0.0.1"],
        host: "127.0.0.1",
        serverCertificateManager,
        securityPolicies: [SecurityPolicy.None, SecurityPolicy.Basic256Sha256],
        securityModes: [MessageSecurityMode.None, MessageSecurityMode.SignAndEncrypt],
        allowAnonymous: true,
        userManager: {
            isValidUser: (user, password) => user === spec.user && password === spec.password,
        },
        buildInfo: { productName: "linegate interop oven", buildNumber: "1" },
        // A certificate of the test's own (a PEM leaf, or leaf + CA: the
        // server then sends the chain).
        certificateFile: spec.cert_file || undefined,
        privateKeyFile: spec.key_file || undefined,
        serverInfo: spec.application_uri ? { applicationUri: spec.application_uri } : undefined,
        serverCapabilities: spec.hidden_limit ? {
            operationLimits: { maxNodesPerRead: spec.hidden_limit, maxMonitoredItemsPerCall: spec.hidden_limit },
        } : undefined,
    });
    await server.initialize();

    if (spec.plain_password) {
        for (const ep of server.endpoints[0].endpointDescriptions()) {
            if (ep.securityMode !== MessageSecurityMode.None) {
                continue;
            }
            const plain = new UserTokenPolicy({ policyId: "username_plain", tokenType: UserTokenType.UserName, securityPolicyUri: null });
            const others = ep.userIdentityTokens.filter((t) => spec.plain_password !== "only" || t.tokenType !== UserTokenType.UserName);
            ep.userIdentityTokens = [plain, ...others];
        }
    }
    server.on("session_activated", (session, token) => console.log("LOGIN " + (token && token.policyId)));

    let sessions = 0;
    server.on("create_session", () => console.log("CREATE_SESSION " + (++sessions)));
    let frozen = false;
    const onPublish = server._on_PublishRequest;
    server._on_PublishRequest = function (message, channel) {
        if (frozen) {
            return; // never answered
        }
        return onPublish.call(this, message, channel);
    };
    if (spec.hidden_limit) {
        let refused = 0;
        for (const [name, many] of [["_on_ReadRequest", (r) => r.nodesToRead], ["_on_CreateMonitoredItemsRequest", (r) => r.itemsToCreate]]) {
            const orig = server[name];
            server[name] = function (message, channel) {
                if ((many(message.request) || []).length > spec.hidden_limit) {
                    console.log("TOO_MANY_OPERATIONS " + (++refused));
                }
                return orig.call(this, message, channel);
            };
        }
    }
    process.on("SIGUSR1", () => {
        frozen = !frozen;
        console.log("PUBLISH " + (frozen ? "FROZEN" : "THAWED"));
    });
    process.on("SIGUSR2", () => {
        let n = 0;
        for (const session of server.engine.getSessions()) {
            for (const sub of session.publishEngine.subscriptions) {
                session.deleteSubscription(sub.id);
                n++;
            }
        }
        console.log("DELETED_SUBSCRIPTIONS " + n);
    });

    const addressSpace = server.engine.addressSpace;
    const ns = addressSpace.getOwnNamespace();
    const line = ns.addFolder(addressSpace.rootFolder.objects, { browseName: "Line1" });
    const oven = ns.addObject({ organizedBy: line, browseName: "Oven" });
    const start = Date.now();
    const t = () => (Date.now() - start) / 1000;
    const variable = (name, dataType, get) => ns.addVariable({
        componentOf: oven, browseName: name, nodeId: "s=Oven." + name, dataType,
        value: { get },
    });
    const temp = variable("Temperature", "Double",
        () => new Variant({ dataType: DataType.Double, value: Math.round((245 + 2 * Math.sin(t() / 3)) * 100) / 100 }));
    variable("Parts", "UInt32", () => new Variant({ dataType: DataType.UInt32, value: Math.floor(t()) }));
    // A 16-bit counter that rolls over every 6.6 s: its width is the node's
    // data type, not anything in linegate's config.
    let strokes = 0;
    const strokesVar = variable("Strokes", "UInt16", () => new Variant({ dataType: DataType.UInt16, value: strokes }));
    const strokesTimer = setInterval(() => { strokes = (strokes + 2000) % 65536; strokesVar.touchValue(); }, 200);
    variable("Recipe", "String", () => new Variant({ dataType: DataType.String, value: "PCB-4711" }));
    variable("Heater", "Boolean", () => new Variant({ dataType: DataType.Boolean, value: true }));
    ns.addVariable({
        componentOf: oven, browseName: "Sensor4", nodeId: "s=Oven.Sensor4", dataType: "Double",
        value: {
            timestamped_get: () => new DataValue({
                statusCode: StatusCodes.BadSensorFailure, sourceTimestamp: new Date(), serverTimestamp: new Date(),
            }),
        },
    });
    const clock = ns.addObject({ organizedBy: line, browseName: "Clock" });
    ns.addVariable({
        componentOf: clock, browseName: "Ahead", nodeId: "s=Clock.Ahead", dataType: "Double", minimumSamplingInterval: 100,
        value: {
            timestamped_get: () => new DataValue({
                value: new Variant({ dataType: DataType.Double, value: 42 }),
                sourceTimestamp: new Date(Date.now() + 3600 * 1000), serverTimestamp: new Date(),
            }),
        },
    });

    const quiet = ns.addObject({ organizedBy: line, browseName: "Quiet" });
    for (const [name, dataType, value] of [["Setpoint", DataType.Double, 180.5], ["Mode", DataType.Int32, 3], ["Batch", DataType.String, "B-0815"]]) {
        ns.addVariable({
            componentOf: quiet, browseName: name, nodeId: "s=Quiet." + name, dataType: DataType[dataType],
            value: new Variant({ dataType, value }),
        });
    }
    // Read-only by its access level: a Write gets BadNotWritable.
    ns.addVariable({
        componentOf: quiet, browseName: "Locked", nodeId: "s=Quiet.Locked", dataType: "Double",
        accessLevel: "CurrentRead", userAccessLevel: "CurrentRead",
        value: new Variant({ dataType: DataType.Double, value: 5 }),
    });

    if (spec.renumber) {
        // The new namespace takes index 2 and the numeric ids the plant's
        // nodes had: a client that kept the old ids reads these.
        const dns = addressSpace.registerNamespace("urn:linegate:download");
        const dl = dns.addObject({ organizedBy: addressSpace.rootFolder.objects, browseName: "Download", nodeId: "s=Download" });
        [7.5, 8.5, 9.5].forEach((value, k) => dns.addVariable({
            componentOf: dl, browseName: "X" + k, nodeId: "i=" + (1000 + k), dataType: "Double",
            value: new Variant({ dataType: DataType.Double, value }),
        }));
    }
    const pns = addressSpace.registerNamespace("urn:linegate:plant");
    const plant = pns.addObject({ organizedBy: addressSpace.rootFolder.objects, browseName: "Plant", nodeId: "s=Plant" });
    const plantVars = [["A", 1.5], ["B", 2.5], ["C", 3.5]];
    if (spec.renumber) {
        plantVars.reverse();
    }
    plantVars.forEach(([name, value], k) => {
        pns.addVariable({
            componentOf: plant, browseName: name, nodeId: "i=" + (1000 + k), dataType: "Double",
            value: new Variant({ dataType: DataType.Double, value }),
        });
        pns.addVariable({
            componentOf: plant, browseName: name + "_s", nodeId: "s=Plant." + name, dataType: "Double",
            value: new Variant({ dataType: DataType.Double, value }),
        });
    });

    // A getter is only polled at the sampling interval; touch the value so
    // subscriptions see it move.
    const level = variable("Level", "Double",
        () => new Variant({ dataType: DataType.Double, value: (Math.floor(t() * 10) % 50) / 50 }));
    const timer = setInterval(() => { temp.touchValue(); level.touchValue(); }, 100);

    if (spec.hidden_limit) {
        // State no limit: 0 in the OperationLimits nodes.
        for (const id of ["ns=0;i=11705", "ns=0;i=11714"]) {
            addressSpace.findNode(id).bindVariable({
                get: () => new Variant({ dataType: DataType.UInt32, value: 0 }),
            }, true);
        }
    }

    await server.start();
    console.log("READY " + server.endpoints[0].port);

    const stop = async () => {
        clearInterval(timer);
        clearInterval(strokesTimer);
        await server.shutdown(100);
        process.exit(0);
    };
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
}

main().catch((err) => {
    console.error(err);
    process.exit(1);
});
