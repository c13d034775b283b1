{#-
  Worked example: map a real dataset onto the package's events contract.
  UCI Online Retail (one row per invoice line, 2010-12 to 2011-12) becomes purchase and
  product_return signals. Run it with `make example-online-retail` (see README,
  "Point it at your own data"); the same shape works for any table of yours.

  * event_id     a content hash of the line, so the dataset's exact duplicate lines collapse
                 into one accepted signal (the copies are quarantined as duplicate_event_id)
  * customer_id  CustomerID (lines without one are quarantined as missing_customer_id)
  * signal_type  product_return for cancellation invoices ('C...'), purchase otherwise
  * amount       Quantity * UnitPrice (negative for returns; a negative purchase is quarantined)
  * jurisdiction Country mapped to the registry's jurisdictions (UK, EU, US-OTHER; else OTHER)
-#}
{%- set source_path = var('marketing_signals__online_retail_path',
                          '../shared/datasets/online_retail/online_retail.parquet') -%}
{%- set eu = ['Austria', 'Belgium', 'Cyprus', 'Czech Republic', 'Denmark', 'EIRE', 'Finland', 'France',
              'Germany', 'Greece', 'Italy', 'Lithuania', 'Malta', 'Netherlands', 'Poland', 'Portugal',
              'Spain', 'Sweden', 'European Community'] -%}

select
    'or-' || left(md5(concat_ws('|', InvoiceNo, StockCode, Description, Quantity, InvoiceDate,
                                UnitPrice, CustomerID, Country)), 20) as event_id,
    'r' || cast(cast(CustomerID as bigint) as varchar) as customer_id,
    case when InvoiceNo like 'C%' then 'product_return' else 'purchase' end as signal_type,
    InvoiceDate as occurred_at,
    InvoiceDate as received_at,
    'online_retail' as source_system,
    'web' as channel,
    'online' as location_id,
    case
        when Country = 'United Kingdom' then 'UK'
        when Country in ('{{ eu | join("', '") }}') then 'EU'
        when Country = 'USA' then 'US-OTHER'
        else 'OTHER'
    end as jurisdiction,
    round(Quantity * UnitPrice, 2) as amount,
    cast(json_object('invoice', InvoiceNo, 'sku', StockCode, 'description', Description,
                     'quantity', Quantity, 'unit_price', UnitPrice, 'country', Country) as varchar) as properties
from read_parquet('{{ source_path }}')
