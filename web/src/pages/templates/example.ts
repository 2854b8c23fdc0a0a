// The text a new template starts from: small, valid, and shaped like the quickstart's demo.
export const EXAMPLE_TEMPLATE = `apiVersion: faultline.dev/v1
kind: Experiment
metadata:
  name: my-service-survives-kill
  description: my service keeps answering through a pause and comes back after a kill
  labels: {team: my-team}
target:
  delegate: {env: staging}   # a delegate's labels, or its name
hypothesis:
  baseline: 2s               # steady state first
  recoverWithin: 15s
  probes:
    - name: web-ok
      http: {url: "http://127.0.0.1:8080/health", expect: {status: 200}}
      mode: continuous
      interval: 250ms
      timeout: 1s
steps:
  - fault: process-pause
    target: {pidFile: /run/my-service.pid}
    duration: 2s
  - pause: 1s
  - fault: process-kill
    target: {pidFile: /run/my-service.pid}
    params: {signal: KILL}
    duration: 3s
`;
