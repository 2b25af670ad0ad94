// opcua_server.js — an OPC UA server on node-opcua 2.x for linegate's
// interop tests. Usage: node opcua_server.js SPEC.json, where SPEC is
//   {"port": 0, "pki": "/tmp/x/pki", "auto_accept": true,
//    "user": "op", "password": "secret"}
// port 0 picks a free port. It prints "READY <port>" once it listens and
// stops on SIGTERM or SIGINT. Endpoints: None/None (anonymous) and
// Basic256Sha256/SignAndEncrypt (anonymous or user/password). Address space:
//   Objects/Line1/Oven/Temperature  ns=1;s=Oven.Temperature  Double, moves every 100 ms
//   Objects/Line1/Oven/Parts        ns=1;s=Oven.Parts        UInt32, +1 per second
//   Objects/Line1/Oven/Recipe       ns=1;s=Oven.Recipe       String "PCB-4711"
//   Objects/Line1/Oven/Heater       ns=1;s=Oven.Heater       Boolean
//   Objects/Line1/Oven/Sensor4      ns=1;s=Oven.Sensor4      Double, status BadSensorFailure
"use strict";
const fs = require("fs");
const {
    OPCUAServer, OPCUACertificateManager, Variant, DataType, DataValue, StatusCodes,
    MessageSecurityMode, SecurityPolicy,
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
    });
    await server.initialize();

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
    // A getter is only polled at the sampling interval; touch the value so
    // subscriptions see it move.
    const timer = setInterval(() => temp.touchValue(), 100);

    await server.start();
    console.log("READY " + server.endpoints[0].port);

    const stop = async () => {
        clearInterval(timer);
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
