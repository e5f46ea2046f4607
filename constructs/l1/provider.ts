/** L1 binding of the `mayastor` provider block. */
import { Construct } from 'constructs';
import * as cdktf from 'cdktf';
import { GENERATOR_METADATA, PROVIDER_SOURCE } from './common';

/**
 * cdktf snake-cases every object key it synthesizes (node-a → node_a), map keys included. Node names are map
 * keys here, so the map is handed over as a resolvable, which cdktf passes through untouched.
 */
function verbatimKeys(m: unknown): unknown {
  if (m === undefined || m === null || typeof m !== 'object' || cdktf.Tokenization.isResolvable(m)) return m;
  const copy = { ...(m as Record<string, unknown>) };
  return { resolve: () => copy, creationStack: [], toString: () => cdktf.Token.asString(copy) } as cdktf.IResolvable;
}

export interface MayastorProviderConfig {
  /** Agents by node name: `{ NAME = "http://HOST:PORT" }`. Every resource names one of these nodes. */
  readonly nodes?: { [key: string]: string };
  /**
   * Bearer token of the agents. Falls back to the `MAYASTOR_TOKEN` environment variable. Accepts an ephemeral value
   * (Terraform >= 1.10): never written to state, and an ephemeral one stays out of saved plans.
   */
  readonly token?: string;
  /** PEM of the CA (or several, concatenated) that signed the agents' TLS certificates; every node URL is then https://. Falls back to `MAYASTOR_CA_CERT_PEM`. */
  readonly caCertPem?: string;
  /** Path of a PEM file holding that CA, or a bundle of several (instead of `caCertPem`). Falls back to `MAYASTOR_CA_CERT_FILE`. */
  readonly caCertFile?: string;
  /** PEM client certificate, for agents started with `--tls-client-ca`. */
  readonly clientCertPem?: string;
  /** PEM private key of `clientCertPem` (sensitive). */
  readonly clientKeyPem?: string;
  /** Timeout of one agent request, in seconds. Default 30. */
  readonly requestTimeoutSeconds?: number;
  /** Extra attempts for idempotent agent requests. Default 3. */
  readonly retries?: number;
  /** How long apply waits for a nexus child rebuild to finish. Default 3600. */
  readonly rebuildTimeoutSeconds?: number;
  /** Alias name of this provider configuration. */
  readonly alias?: string;
}

export class MayastorProvider extends cdktf.TerraformProvider {
  public static readonly tfResourceType = 'mayastor';

  public constructor(scope: Construct, id: string, config: MayastorProviderConfig = {}) {
    super(scope, id, {
      terraformResourceType: 'mayastor',
      terraformGeneratorMetadata: GENERATOR_METADATA,
      terraformProviderSource: PROVIDER_SOURCE,
    });
    this._nodes = config.nodes;
    this._token = config.token;
    this._caCertPem = config.caCertPem;
    this._caCertFile = config.caCertFile;
    this._clientCertPem = config.clientCertPem;
    this._clientKeyPem = config.clientKeyPem;
    this._requestTimeoutSeconds = config.requestTimeoutSeconds;
    this._retries = config.retries;
    this._rebuildTimeoutSeconds = config.rebuildTimeoutSeconds;
    this._alias = config.alias;
  }

  private _nodes?: { [key: string]: string };
  public get nodes(): { [key: string]: string } | undefined {
    return this._nodes;
  }
  public set nodes(value: { [key: string]: string } | undefined) {
    this._nodes = value;
  }
  public resetNodes(): void {
    this._nodes = undefined;
  }
  public get nodesInput(): { [key: string]: string } | undefined {
    return this._nodes;
  }

  private _caCertPem?: string;
  public get caCertPem(): string | undefined {
    return this._caCertPem;
  }
  public set caCertPem(value: string | undefined) {
    this._caCertPem = value;
  }
  public resetCaCertPem(): void {
    this._caCertPem = undefined;
  }
  public get caCertPemInput(): string | undefined {
    return this._caCertPem;
  }

  private _caCertFile?: string;
  public get caCertFile(): string | undefined {
    return this._caCertFile;
  }
  public set caCertFile(value: string | undefined) {
    this._caCertFile = value;
  }
  public resetCaCertFile(): void {
    this._caCertFile = undefined;
  }
  public get caCertFileInput(): string | undefined {
    return this._caCertFile;
  }

  private _clientCertPem?: string;
  public get clientCertPem(): string | undefined {
    return this._clientCertPem;
  }
  public set clientCertPem(value: string | undefined) {
    this._clientCertPem = value;
  }
  public resetClientCertPem(): void {
    this._clientCertPem = undefined;
  }
  public get clientCertPemInput(): string | undefined {
    return this._clientCertPem;
  }

  private _clientKeyPem?: string;
  public get clientKeyPem(): string | undefined {
    return this._clientKeyPem;
  }
  public set clientKeyPem(value: string | undefined) {
    this._clientKeyPem = value;
  }
  public resetClientKeyPem(): void {
    this._clientKeyPem = undefined;
  }
  public get clientKeyPemInput(): string | undefined {
    return this._clientKeyPem;
  }

  private _token?: string;
  public get token(): string | undefined {
    return this._token;
  }
  public set token(value: string | undefined) {
    this._token = value;
  }
  public resetToken(): void {
    this._token = undefined;
  }
  public get tokenInput(): string | undefined {
    return this._token;
  }

  private _requestTimeoutSeconds?: number;
  public get requestTimeoutSeconds(): number | undefined {
    return this._requestTimeoutSeconds;
  }
  public set requestTimeoutSeconds(value: number | undefined) {
    this._requestTimeoutSeconds = value;
  }
  public resetRequestTimeoutSeconds(): void {
    this._requestTimeoutSeconds = undefined;
  }
  public get requestTimeoutSecondsInput(): number | undefined {
    return this._requestTimeoutSeconds;
  }

  private _retries?: number;
  public get retries(): number | undefined {
    return this._retries;
  }
  public set retries(value: number | undefined) {
    this._retries = value;
  }
  public resetRetries(): void {
    this._retries = undefined;
  }
  public get retriesInput(): number | undefined {
    return this._retries;
  }

  private _rebuildTimeoutSeconds?: number;
  public get rebuildTimeoutSeconds(): number | undefined {
    return this._rebuildTimeoutSeconds;
  }
  public set rebuildTimeoutSeconds(value: number | undefined) {
    this._rebuildTimeoutSeconds = value;
  }
  public resetRebuildTimeoutSeconds(): void {
    this._rebuildTimeoutSeconds = undefined;
  }
  public get rebuildTimeoutSecondsInput(): number | undefined {
    return this._rebuildTimeoutSeconds;
  }

  private _alias?: string;
  public override get alias(): string | undefined {
    return this._alias;
  }
  public override set alias(value: string | undefined) {
    this._alias = value;
  }
  public resetAlias(): void {
    this._alias = undefined;
  }
  public get aliasInput(): string | undefined {
    return this._alias;
  }

  protected override synthesizeAttributes(): { [name: string]: unknown } {
    return {
      nodes: verbatimKeys(cdktf.hashMapper(cdktf.stringToTerraform)(this._nodes)),
      token: cdktf.stringToTerraform(this._token),
      ca_cert_pem: cdktf.stringToTerraform(this._caCertPem),
      ca_cert_file: cdktf.stringToTerraform(this._caCertFile),
      client_cert_pem: cdktf.stringToTerraform(this._clientCertPem),
      client_key_pem: cdktf.stringToTerraform(this._clientKeyPem),
      request_timeout_seconds: cdktf.numberToTerraform(this._requestTimeoutSeconds),
      retries: cdktf.numberToTerraform(this._retries),
      rebuild_timeout_seconds: cdktf.numberToTerraform(this._rebuildTimeoutSeconds),
      alias: cdktf.stringToTerraform(this._alias),
    };
  }
}
