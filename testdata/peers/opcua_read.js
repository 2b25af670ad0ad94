// opcua_read.js — an independent OPC UA client for linegate's interop
// tests: reads nodes and prints one JSON line per node,
//   {"node":"ns=1;s=Quiet.Setpoint","status":"Good","value":200.25,"type":"Double"}
// Usage: node opcua_read.js opc.tcp://127.0.0.1:PORT NODEID... (security
// None, anonymous). Exit status 1 when it cannot connect.
"use strict";
const { OPCUAClient, AttributeIds, DataType, MessageSecurityMode, SecurityPolicy } = require("node-opcua");

(async () => {
    const [endpoint, ...nodes] = process.argv.slice(2);
    const client = OPCUAClient.create({
        endpointMustExist: false, securityMode: MessageSecurityMode.None, securityPolicy: SecurityPolicy.None,
        connectionStrategy: { maxRetry: 2, initialDelay: 100, maxDelay: 500 },
    });
    try {
        await client.connect(endpoint);
        const session = await client.createSession();
        const values = await session.read(nodes.map((nodeId) => ({ nodeId, attributeId: AttributeIds.Value })));
        values.forEach((dv, i) => {
            const v = dv.value;
            console.log("VALUE " + JSON.stringify({
                node: nodes[i], status: dv.statusCode.name,
                value: v ? (typeof v.value === "bigint" ? String(v.value) : v.value) : null,
                type: v ? DataType[v.dataType] : null,
            }));
        });
        await session.close();
        await client.disconnect();
    } catch (e) {
        console.error("opcua_read.js: " + e.message);
        process.exit(1);
    }
})();
